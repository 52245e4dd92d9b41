"""OAuth 2.0 Token Introspection (RFC 7662) for issuers that hand out opaque tokens.

Only one issuer may introspect (see ``config.validation``): an opaque token does not say
who issued it, and sending it to several providers would leak one provider's tokens to
another. Answers are cached by the token's fingerprint: active ones no longer than
their ``exp`` and ``introspection.cache_max_s``, inactive ones for
``introspection.negative_cache_s`` so a flood of junk tokens does not become a flood of
introspection calls.
"""

from __future__ import annotations

import dataclasses
import math
import re
from types import MappingProxyType
from typing import Any

import httpx
from cachetools import TLRUCache

from ssoio.clock import Clock
from ssoio.config.model import IntrospectionSettings, IssuerSettings
from ssoio.errors import AuthenticationError, ClaimsInvalid, TokenRevoked
from ssoio.oidc.claims import ClaimRules, check_access_token
from ssoio.oidc.http import fetch_json
from ssoio.oidc.verified import VerifiedToken

__all__ = ["Introspector", "looks_opaque"]

# RFC 6750 §2.1 b64token; a JWT has dots, which this also allows, so exclude them.
_OPAQUE = re.compile(r"[A-Za-z0-9\-_~+/]+=*")
_MAX_RESPONSE_BYTES = 64 * 1024


def looks_opaque(token: str) -> bool:
    """True for a bearer token that is not a JWS/JWE compact serialisation."""
    return "." not in token and _OPAQUE.fullmatch(token) is not None


class Introspector:
    """Asks one issuer's introspection endpoint about opaque tokens."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        issuer: IssuerSettings,
        clock: Clock,
        max_lifetime_s: float = math.inf,
    ) -> None:
        assert issuer.introspection is not None
        self._http = http
        self._issuer = issuer
        self._settings: IntrospectionSettings = issuer.introspection
        self._clock = clock
        # RFC 7662 §2.2: iat is optional in an introspection answer.
        rules = ClaimRules.from_settings(issuer, max_lifetime_s)
        required = tuple(c for c in rules.required if c not in ("iat", "client_id", "jti"))
        self._rules = dataclasses.replace(rules, required=required, strict_rfc9068=False)
        self._cache: TLRUCache[bytes, tuple[float, VerifiedToken | AuthenticationError]] = (
            TLRUCache(maxsize=10000, ttu=lambda _key, value, _now: value[0], timer=clock)
        )

    async def introspect(self, token: str, fingerprint: bytes) -> VerifiedToken:
        """Verify an opaque token by asking its issuer.

        :raises TokenRevoked: the provider says the token is not active.
        :raises IdpUnavailable: the provider cannot be asked.
        """
        cached = self._cache.get(fingerprint)
        if cached is None:
            cached = await self._ask(token, fingerprint)
            self._cache[fingerprint] = cached
        if isinstance(cached[1], AuthenticationError):
            raise cached[1]
        return cached[1]

    async def _ask(
        self, token: str, fingerprint: bytes
    ) -> tuple[float, VerifiedToken | AuthenticationError]:
        answer = await fetch_json(
            self._http,
            self._settings.endpoint,
            method="POST",
            data={"token": token, "token_type_hint": "access_token"},
            auth=(self._settings.client_id, self._settings.client_secret.get_secret_value()),
            max_bytes=_MAX_RESPONSE_BYTES,
            timeout_s=self._issuer.keys.http_timeout_s,
        )
        now = self._clock()
        try:
            if answer.get("active") is not True:  # RFC 7662 §2.2: only a literal true
                raise TokenRevoked(
                    "the provider reports the token as not active",
                    detail={"seen": {"active": False}, "expected": {"active": True}},
                )
            claims = _claims_of(answer, self._issuer.issuer)
            expires_at = check_access_token(claims, self._rules, now)
        except AuthenticationError as refusal:
            return now + self._settings.negative_cache_s, refusal
        verified = VerifiedToken(self._issuer, MappingProxyType(claims), expires_at, fingerprint)
        return min(expires_at, now + self._settings.cache_max_s), verified


def _claims_of(answer: dict[str, Any], issuer: str) -> dict[str, Any]:
    claims = {k: v for k, v in answer.items() if k != "active"}
    claims.setdefault("iss", issuer)
    if claims["iss"] != issuer:
        raise ClaimsInvalid("the introspection answer names another issuer", claim="iss")
    return claims
