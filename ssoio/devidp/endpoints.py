"""authlib's endpoint classes for end-session, userinfo and the ``iss`` response parameter.

Each one is authlib's, with two workarounds: ``UserInfoEndpoint`` fetches its token
through the Flask-only ``ResourceProtector.acquire_token``, so the call is replaced by the
framework-neutral ``validate_request``; and ``IssuerParameter`` sets a ``location``
attribute that only Flask and Django responses have, so it writes the header instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import InvalidRequestError, ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.responses import Response

from ssoio.clock import Clock
from ssoio.devidp.directory import Directory
from ssoio.devidp.keys import SigningKeys
from ssoio.devidp.sessions import Sessions

__all__ = ["AccessTokens", "EndSession", "IssuerInRedirect", "UserInfo"]

log = logging.getLogger(__name__)


class IssuerInRedirect(IssuerParameter):  # type: ignore[misc]
    """RFC 9207 §2: the authorization response (errors too) names its issuer (``iss``)."""

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    def get_issuer(self) -> str:
        return self._issuer

    def add_issuer_parameter(self, authorization_server: Any, response: Response) -> None:
        if location := response.headers.get("location"):
            response.headers["location"] = add_params_to_uri(location, {"iss": self._issuer})


class EndSession(EndSessionEndpoint):  # type: ignore[misc]
    """OpenID Connect RP-Initiated Logout 1.0, stricter than authlib's defaults.

    authlib checks the ``id_token_hint`` signature and skips a redirect to an unregistered
    ``post_logout_redirect_uri``; here such a URI is an error (§3: "MUST NOT perform
    post-logout redirection"; §4: errors are shown to the user), and the hint must be an
    ID token of this issuer for a registered client.
    """

    def __init__(
        self, issuer: str, keys: SigningKeys, directory: Directory, sessions: Sessions
    ) -> None:
        super().__init__()
        self._issuer = issuer
        self._keys = keys
        self._directory = directory
        self._sessions = sessions

    def get_server_jwks(self) -> KeySet:
        return self._keys.verification_set()

    def get_algorithms(self) -> list[str]:
        return ["RS256"]

    def validate_request(self, request: Any) -> EndSessionRequest:
        validated = super().validate_request(request)
        claims = validated.id_token_claims
        if claims is not None and not self._ours(claims):
            raise InvalidRequestError("The id_token_hint is not an ID token of this provider.")
        asked = request.payload.data.get("post_logout_redirect_uri")
        client = validated.client
        if asked and (client is None or asked not in client.post_logout_redirect_uris):
            raise InvalidRequestError("The post_logout_redirect_uri is not registered.")
        return validated

    def _ours(self, claims: dict[str, Any]) -> bool:
        aud = claims.get("aud")  # an access token's aud is the API, not a client
        return (
            claims.get("iss") == self._issuer
            and isinstance(aud, str)
            and (aud in self._directory.clients)
        )

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        """End the session the hint names (by ``sid``), else the browser's own."""
        request = end_session_request.request
        claims = end_session_request.id_token_claims or {}
        session = self._sessions.get(claims.get("sid")) or request.browser_session
        if session is None or claims.get("sub", session.user.username) != session.user.username:
            return  # already over, or the hint is about someone else's session
        request.ended_session = self._sessions.end(session.sid)


@dataclass(frozen=True, slots=True)
class _VerifiedAccessToken:
    """The parts of authlib's ``TokenMixin`` its bearer validator and userinfo read."""

    claims: dict[str, Any]
    expired: bool
    revoked: bool
    client: Any

    @property
    def scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return self.expired

    def is_revoked(self) -> bool:
        return self.revoked

    def get_client(self) -> Any:
        return self.client

    def get_user(self) -> str:
        return str(self.claims["sub"])


class AccessTokens(BearerTokenValidator):  # type: ignore[misc]
    """RFC 6750 bearer tokens for the userinfo endpoint: this provider's own JWTs."""

    def __init__(
        self, issuer: str, keys: SigningKeys, directory: Directory, sessions: Sessions, clock: Clock
    ) -> None:
        super().__init__()
        self._issuer = issuer
        self._keys = keys
        self._directory = directory
        self._sessions = sessions
        self._clock = clock

    def authenticate_token(self, token_string: str) -> _VerifiedAccessToken | None:
        try:
            token = jwt.decode(token_string, self._keys.verification_set(), algorithms=["RS256"])
        except (JoseError, ValueError):
            return None
        claims = token.claims
        if token.header.get("typ") != "at+jwt" or claims.get("iss") != self._issuer:
            return None
        expired = not isinstance(claims.get("exp"), int) or claims["exp"] < self._clock()
        revoked = not self._sessions.is_live(str(claims.get("sid", "")))  # logged out since
        client = self._directory.clients.get(str(claims.get("client_id")))
        return _VerifiedAccessToken(claims, expired, revoked, client)


class UserInfo(UserInfoEndpoint):  # type: ignore[misc]
    """OIDC Core §5.3: the signed-in user's standard claims, by the token's scopes."""

    def __init__(self, directory: Directory, protector: ResourceProtector) -> None:
        super().__init__(resource_protector=protector)
        self._directory = directory

    def __call__(self, request: Any) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.resource_protector.validate_request(["openid"], request)
        user = self._directory.users.get(token.get_user())
        if user is None:  # a client's own token: there is no user to describe
            raise InvalidTokenError()
        body = {"sub": user.username, **user.standard_claims(token.scope)}
        return 200, body, default_json_headers
