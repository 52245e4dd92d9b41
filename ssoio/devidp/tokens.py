"""The tokens the development provider signs, with joserfc (``authlib.jose`` is deprecated).

- access tokens: RFC 9068 JWTs (``typ: at+jwt``) for ssoio's API audience, carrying the
  user's Keycloak-shaped claims and the provider session id;
- ID tokens: OIDC Core §2 and §3.1.3.6 (``at_hash``);
- logout tokens: OIDC Back-Channel Logout 1.0 §2.4 (``typ: logout+jwt``, no ``nonce``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from joserfc import jwt

from ssoio.clock import Clock
from ssoio.devidp.keys import SigningKeys
from ssoio.devidp.sessions import SessionUser
from ssoio.oidc.id_tokens import BACKCHANNEL_LOGOUT_EVENT

__all__ = ["ID_TOKEN_TTL_S", "LOGOUT_TOKEN_TTL_S", "TokenSigner", "at_hash"]

ID_TOKEN_TTL_S = 3600
LOGOUT_TOKEN_TTL_S = 120


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: the left half of the SHA-256 of the token, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


class TokenSigner:
    """Signs with the current key of ``keys``; every time comes from ``clock``.

    :param audience: the ``aud`` of access tokens (ssoio's ``issuers[].audiences``).
    :param access_ttl_s: access token lifetime, also the token response's ``expires_in``.
    """

    def __init__(
        self, issuer: str, audience: str, keys: SigningKeys, clock: Clock, access_ttl_s: int
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.access_ttl_s = access_ttl_s
        self._keys = keys
        self._clock = clock

    def access_token(
        self, client_id: str, user: SessionUser | None, scope: str,
        client_claims: Mapping[str, str] | None = None,
    ) -> str:  # fmt: skip
        """RFC 9068 §2.2; a client-credentials token (no user) is about the client itself,
        with ``client_claims`` (the client's configured claims) added."""
        claims = self._claims(self.audience, self.access_ttl_s)
        if user is None:
            claims.update(client_claims or {})
        claims.update(sub=user.user.username if user else client_id, client_id=client_id)
        claims["azp"] = client_id  # Keycloak's name for the client; ssoio's keycloak preset
        if scope:
            claims["scope"] = scope
        if user is not None:
            claims.update(user.user.identity_claims(), sid=user.sid, auth_time=user.auth_time)
        return self._sign(claims, "at+jwt")

    def id_token(
        self, client_id: str, user: SessionUser, scope: str, nonce: str | None, access_token: str
    ) -> str:
        """OIDC Core §2: for ``client_id``, echoing the authorization request's ``nonce``."""
        claims = self._claims(client_id, ID_TOKEN_TTL_S)
        claims.update(user.user.standard_claims(scope))
        claims.update(sub=user.user.username, azp=client_id, auth_time=user.auth_time)
        claims.update(sid=user.sid, at_hash=at_hash(access_token))
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims, "JWT")

    def logout_token(self, client_id: str, sub: str, sid: str) -> str:
        """Back-Channel Logout 1.0 §2.4: sub and sid, the event, and never a nonce."""
        claims = self._claims(client_id, LOGOUT_TOKEN_TTL_S)
        claims.update(sub=sub, sid=sid, events={BACKCHANNEL_LOGOUT_EVENT: {}})
        return self._sign(claims, "logout+jwt")

    def _claims(self, audience: str, ttl_s: int) -> dict[str, Any]:
        now = int(self._clock())
        jti = secrets.token_urlsafe(16)
        return {"iss": self.issuer, "aud": audience, "iat": now, "exp": now + ttl_s, "jti": jti}

    def _sign(self, claims: dict[str, Any], typ: str) -> str:
        key = self._keys.current
        header = {"alg": "RS256", "kid": key.kid, "typ": typ}  # explicit typing, RFC 8725 §3.11
        return jwt.encode(header, claims, key, algorithms=["RS256"])
