"""authlib's ``AuthorizationServer``, wired to the development provider's parts.

The framework methods authlib leaves open are filled for Starlette (see ``adapter.py``);
the grants, endpoints and token generator are authlib's, registered here.
"""

from __future__ import annotations

import logging
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Error, ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from starlette.responses import Response

from ssoio.clock import Clock
from ssoio.devidp.adapter import DevOAuth2Request, to_response
from ssoio.devidp.clients import DevClient
from ssoio.devidp.directory import Directory
from ssoio.devidp.endpoints import AccessTokens, EndSession, IssuerInRedirect, UserInfo
from ssoio.devidp.grants import (
    ClientGrant,
    CodeGrant,
    IdTokens,
    PkceS256,
    RefreshGrant,
    new_refresh_token,
)
from ssoio.devidp.keys import SigningKeys
from ssoio.devidp.sessions import Sessions, SessionUser
from ssoio.devidp.store import GrantStore
from ssoio.devidp.tokens import TokenSigner

__all__ = ["DevAuthorizationServer"]

# authlib logs issued tokens and PKCE verifiers at DEBUG level; never let that reach a log.
logging.getLogger("authlib").setLevel(logging.WARNING)


class DevAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authorization code (+PKCE, +OpenID), refresh token and client credentials grants;
    end-session and userinfo endpoints; every answer a Starlette ``Response``."""

    def __init__(
        self,
        directory: Directory,
        keys: SigningKeys,
        signer: TokenSigner,
        sessions: Sessions,
        clock: Clock,
    ) -> None:
        super().__init__(scopes_supported=list(directory.scopes))
        self.directory = directory
        self.sessions = sessions
        self.clock = clock
        self.grants = GrantStore(clock, sessions)
        self._signer = signer
        self.register_token_generator("default", self._token_generator())
        self.register_grant(CodeGrant, [PkceS256(), IdTokens(signer, self.grants)])
        self.register_grant(RefreshGrant)
        self.register_grant(ClientGrant)
        self.register_extension(IssuerInRedirect(signer.issuer))
        self.register_endpoint(EndSession(signer.issuer, keys, directory, sessions))
        protector = ResourceProtector()
        protector.register_token_validator(
            AccessTokens(signer.issuer, keys, directory, sessions, clock)
        )
        self.register_endpoint(UserInfo(directory, protector))

    def _token_generator(self) -> BearerTokenGenerator:
        def access_token(client: DevClient, grant_type: str, user: Any, scope: str) -> str:
            return self._signer.access_token(client.client_id, user, scope, client.claims)

        def expires_in(client: DevClient, grant_type: str) -> int:
            return self._signer.access_ttl_s

        return BearerTokenGenerator(access_token, new_refresh_token, expires_in)

    # -- what authlib asks of an integration -------------------------------------------------

    def query_client(self, client_id: str) -> DevClient | None:
        return self.directory.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: DevOAuth2Request) -> None:
        refresh_token = token.get("refresh_token")
        user: SessionUser | None = request.user
        if refresh_token is None or user is None:
            return
        scope = token.get("scope", "")
        self.grants.save_refresh(refresh_token, request.client.client_id, scope, user)
        if request.authorization_code is not None:
            request.authorization_code.refresh_token = refresh_token

    def create_oauth2_request(self, request: DevOAuth2Request) -> DevOAuth2Request:
        return request  # already read by ``adapter.read_request``

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints here")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        return to_response(status, body, headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's grants announce events here; nothing listens."""

    def authorization_error(self, request: DevOAuth2Request, error: OAuth2Error) -> Response:
        """An error found before authlib's ``create_authorization_response`` ran, answered
        the way it would have been (a redirect with ``iss`` when the client is known)."""
        response: Response = self.handle_error_response(request, error)
        self.execute_hook("after_create_authorization_response", response)
        return response
