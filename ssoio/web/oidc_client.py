"""ssoio as an OpenID Connect relying party, through authlib's Starlette client.

authlib does the authorization-code flow mechanics (state, PKCE S256, nonce, the token
request with client authentication, refresh, the end-session URL). The ID token is
verified by ssoio itself, through the same key store as access tokens, so there is one
place where keys are fetched, cached and rotated.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse

from ssoio.clock import Clock
from ssoio.config.model import Settings
from ssoio.errors import IdpUnavailable
from ssoio.oidc.discovery import ProviderMetadata
from ssoio.oidc.id_tokens import Expectations, check_id_token_claims, verify_signed
from ssoio.oidc.providers import IdentityProviders

with warnings.catch_warnings():
    # authlib 1.9 warns on import that its httpx integration is deprecated in favour of
    # "httpx2"; the integration works and is what DESIGN.md chose. authlib.deprecate
    # installs an "always" filter for its warnings when imported, so import it first and
    # put this one narrower filter in front of it.
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.filterwarnings(
        "ignore", message=".*httpx module is deprecated.*", category=AuthlibDeprecationWarning
    )
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

__all__ = ["LoginClient", "OAuthError"]

# authlib logs the PKCE code_verifier at DEBUG level; never let that reach a log.
logging.getLogger("authlib").setLevel(logging.WARNING)
log = logging.getLogger(__name__)


class LoginClient:
    """The login issuer's OAuth 2.0 / OIDC client, built from its discovery document."""

    def __init__(self, settings: Settings, providers: IdentityProviders, clock: Clock) -> None:
        self.settings = settings
        self.issuer = settings.login_issuer
        self._providers = providers
        self._clock = clock
        self._oauth = OAuth()
        self._app: StarletteOAuth2App | None = None
        self.metadata: ProviderMetadata | None = None

    async def app(self) -> StarletteOAuth2App:
        """The authlib client, registered on first use from the (issuer-checked) metadata."""
        if self._app is None:
            metadata = await self._providers.discovery.get(self.issuer)
            if metadata.authorization_endpoint is None or metadata.token_endpoint is None:
                raise IdpUnavailable("the provider publishes no authorization or token endpoint")
            login = self.settings.login
            secret = login.client_secret.get_secret_value()
            self._app = self._oauth.register(
                name="ssoio",
                client_id=login.client_id,
                client_secret=secret or None,
                authorize_url=metadata.authorization_endpoint,
                access_token_url=metadata.token_endpoint,
                client_kwargs={
                    "scope": " ".join(login.scopes),
                    "code_challenge_method": "S256",
                    # no secret: a public client, authenticated by PKCE alone
                    "token_endpoint_auth_method": "client_secret_basic" if secret else "none",
                    "timeout": self.issuer.keys.http_timeout_s,
                },
            )
            self.metadata = metadata
        return self._app

    async def redirect_to_login(self, request: Request, redirect_uri: str) -> RedirectResponse:
        """Start the flow; authlib stores state, nonce and the PKCE verifier in
        ``request.session`` (ssoio's server-side session data)."""
        app = await self.app()
        response: RedirectResponse = await app.authorize_redirect(request, redirect_uri)
        return response

    async def exchange(self, code: str, state_data: dict[str, Any]) -> dict[str, Any]:
        """Trade the code for tokens (RFC 6749 §4.1.3, with the PKCE verifier).

        :raises OAuthError: the provider refused (replayed or forged code, ...).
        :raises IdpUnavailable: the token endpoint failed or gave no usable answer.
        """
        return await self._token_request(
            code=code,
            redirect_uri=state_data.get("redirect_uri"),
            code_verifier=state_data.get("code_verifier"),
        )

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """RFC 6749 §6.

        :raises OAuthError: the refresh token is no longer good.
        :raises IdpUnavailable: the token endpoint failed or gave no usable answer.
        """
        return await self._token_request(grant_type="refresh_token", refresh_token=refresh_token)

    async def _token_request(self, **params: Any) -> dict[str, Any]:
        app = await self.app()
        try:
            # httpx's timeout is per read: a trickled answer is cut by a total deadline
            async with asyncio.timeout(self.issuer.keys.http_timeout_s):
                token = await app.fetch_access_token(**params)
        # authlib raises httpx's errors for 5xx and timeouts, and json's for a body that
        # is not JSON (RFC 6749 §5.1 requires application/json); the type says which
        except (httpx.HTTPError, ValueError, TypeError, KeyError, TimeoutError) as exc:
            log.warning("login.token_endpoint.failed kind=%s", type(exc).__name__)
            raise IdpUnavailable("the token endpoint failed") from None
        if not isinstance(token, dict):
            raise IdpUnavailable("the token endpoint answered no JSON object")
        return dict(token)

    async def verify_id_token(self, id_token: object, nonce: str | None) -> dict[str, Any]:
        """OIDC Core §3.1.3.7: signature (the key store), iss, aud, azp, exp, iat, nonce.

        :raises AuthenticationError:
        """
        claims = await verify_signed(id_token, self._providers.keys, self.issuer,
                                     refused_types=("at+jwt", "logout+jwt"))  # fmt: skip
        check_id_token_claims(claims, self.expectations(), nonce, self._clock())
        return claims

    def expectations(self, max_age_s: float = float("inf")) -> Expectations:
        return Expectations(
            issuer=self.issuer.issuer,
            client_id=self.settings.login.client_id,
            leeway_s=self.issuer.leeway_s,
            max_age_s=max_age_s,
        )

    def end_session_url(
        self, id_token_hint: str | None, post_logout_redirect_uri: str
    ) -> str | None:
        """RP-initiated logout at the provider, when it publishes an end-session endpoint."""
        endpoint = self.metadata.end_session_endpoint if self.metadata else None
        if endpoint is None:
            return None
        params = {"post_logout_redirect_uri": post_logout_redirect_uri,
                  "client_id": self.settings.login.client_id}  # fmt: skip
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{urlencode(params)}"
