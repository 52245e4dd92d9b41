"""ssoio as an OpenID Connect relying party: the authorization-code flow with PKCE.

The flow's requests go through the node's one HTTP client (``IdentityProviders.http``,
which also fetches the discovery documents and keys), and the ID token is verified through
the same key store as access tokens, so there is one place where keys are fetched, cached
and rotated.

Why not authlib's Starlette client (authlib 1.9.10,
``authlib.integrations.base_client.async_app.AsyncOAuth2Mixin``): it builds a new
``httpx.AsyncClient`` (TLS context included) for every ``create_authorization_url`` and
``fetch_access_token`` call, ~20-30 ms of CPU and several hundred KB per anonymous
``GET /auth/login``: a cheap denial of service. The authorization URL needs no I/O at all,
and the token request is one bounded form POST (RFC 6749 §4.1.3, §6), done here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from ssoio.clock import Clock
from ssoio.config.model import Settings
from ssoio.errors import AuthenticationError, IdpUnavailable
from ssoio.oidc.discovery import ProviderMetadata
from ssoio.oidc.http import parse_json_object
from ssoio.oidc.id_tokens import Expectations, check_id_token_claims, verify_signed
from ssoio.oidc.providers import IdentityProviders
from ssoio.web.pending import PendingLogin

__all__ = ["GrantRefused", "LoginClient"]

log = logging.getLogger(__name__)

# A token response holds three tokens; 256 KiB is far above any real one.
MAX_TOKEN_RESPONSE_BYTES = 256 * 1024


class GrantRefused(AuthenticationError):
    """The token endpoint refused the grant (RFC 6749 §5.2): a used, forged or expired
    code, or a refresh token that is no longer good. ``error`` is the provider's code."""

    code = "code_rejected"
    default_message = "the identity provider refused the grant"

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class LoginClient:
    """The login issuer's OAuth 2.0 / OIDC client, built from its discovery document."""

    def __init__(self, settings: Settings, providers: IdentityProviders, clock: Clock) -> None:
        self.settings = settings
        self.issuer = settings.login_issuer
        self._providers = providers
        self._clock = clock
        self.metadata: ProviderMetadata | None = None

    async def endpoints(self) -> tuple[str, str]:
        """(authorization endpoint, token endpoint) from the issuer-checked, cached metadata.

        :raises IdpUnavailable: no metadata, or no such endpoints in it.
        """
        metadata = await self._metadata()
        authorize, token = metadata.authorization_endpoint, metadata.token_endpoint
        if authorize is None or token is None:
            raise IdpUnavailable("the provider publishes no authorization or token endpoint")
        return authorize, token

    async def _metadata(self) -> ProviderMetadata:
        metadata = await self._providers.discovery.get(self.issuer)
        if self.metadata is None:
            _announce_logout_channels(self.issuer.name, metadata)
        self.metadata = metadata
        return metadata

    async def authorization_url(self, redirect_uri: str, pending: PendingLogin) -> str:
        """Where to send the browser (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1).

        :raises IdpUnavailable: the provider's metadata cannot be had.
        """
        endpoint, _ = await self.endpoints()
        params = {
            "response_type": "code",
            "client_id": self.settings.login.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.settings.login.scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": pending.code_challenge,
            "code_challenge_method": "S256",
        }
        # RFC 6749 §3.1: a query the endpoint URL already has MUST be kept
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"

    async def exchange(self, code: str, code_verifier: str, redirect_uri: str) -> dict[str, Any]:
        """Trade the code for tokens (RFC 6749 §4.1.3, with the verifier: RFC 7636 §4.5).

        :raises GrantRefused: the provider refused (replayed or forged code, ...).
        :raises IdpUnavailable: the token endpoint failed or gave no usable answer.
        """
        return await self._token_request({"grant_type": "authorization_code", "code": code,
                                          "redirect_uri": redirect_uri,
                                          "code_verifier": code_verifier})  # fmt: skip

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """RFC 6749 §6.

        :raises GrantRefused: the refresh token is no longer good.
        :raises IdpUnavailable: the token endpoint failed or gave no usable answer.
        """
        return await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        _, endpoint = await self.endpoints()
        login = self.settings.login
        secret = login.client_secret.get_secret_value()
        auth: tuple[str, str] | None = None
        if secret:  # RFC 6749 §2.3.1 client_secret_basic: both form-urlencoded first
            auth = (quote(login.client_id, safe=""), quote(secret, safe=""))
        else:  # a public client, authenticated by PKCE alone (RFC 6749 §4.1.3)
            form = {**form, "client_id": login.client_id}
        timeout = self.issuer.keys.http_timeout_s
        try:
            # httpx's timeouts are per operation: a deadline bounds a trickling answer too
            async with asyncio.timeout(timeout):
                status, body = await self._post(endpoint, form, auth)
        except (httpx.HTTPError, TimeoutError) as exc:
            log.warning("login.token_endpoint.failed kind=%s", type(exc).__name__)
            raise IdpUnavailable("the token endpoint failed") from None
        return _token_answer(status, body)

    async def _post(
        self, url: str, form: dict[str, str], auth: tuple[str, str] | None
    ) -> tuple[int, bytes]:
        """(status, body) of the token request; (0, b"") for a body over the bound."""
        async with self._providers.http.stream(
            "POST", url, data=form, auth=auth, headers={"Accept": "application/json"},
            timeout=self.issuer.keys.http_timeout_s, follow_redirects=False,
        ) as response:  # fmt: skip
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_TOKEN_RESPONSE_BYTES:
                    return 0, b""
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

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

    async def end_session_url(
        self, id_token_hint: str | None, post_logout_redirect_uri: str, state: str
    ) -> str | None:
        """RP-initiated logout at the provider (RP-Initiated Logout 1.0 §2: ``id_token_hint``,
        ``client_id``, ``post_logout_redirect_uri``, ``state``), when it publishes an
        end-session endpoint; None when it does not (or cannot be asked now)."""
        try:
            endpoint = (await self._metadata()).end_session_endpoint
        except IdpUnavailable:
            return None
        if endpoint is None:
            return None
        params = {"post_logout_redirect_uri": post_logout_redirect_uri,
                  "client_id": self.settings.login.client_id, "state": state}  # fmt: skip
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{urlencode(params)}"


def _announce_logout_channels(issuer: str, metadata: ProviderMetadata) -> None:
    """Tell the operator, once, which logout channels the provider says it has (OIDC
    Back-Channel Logout 1.0 §2.1, Front-Channel Logout 1.0 §3, RP-Initiated Logout 1.0 §2.1):
    the one to register decides how fast sockets close after a logout at the provider."""
    raw = metadata.raw
    log.info(
        "login.logout_channels issuer=%s backchannel=%s frontchannel=%s end_session=%s",
        issuer, raw.get("backchannel_logout_supported") is True,
        raw.get("frontchannel_logout_supported") is True,
        metadata.end_session_endpoint is not None,
    )  # fmt: skip


def _token_answer(status: int, body: bytes) -> dict[str, Any]:
    """RFC 6749 §5.1: 200 and a JSON object with ``access_token``; §5.2: 400 (401 for
    client authentication) and a JSON object with ``error``; anything else is an outage."""
    document = parse_json_object(body) if body else None
    if status == 200 and document is not None and isinstance(document.get("access_token"), str):
        return document
    if status in (400, 401) and document is not None and isinstance(document.get("error"), str):
        raise GrantRefused(document["error"])
    log.warning("login.token_endpoint.failed status=%d", status)
    raise IdpUnavailable("the token endpoint gave no usable answer")
