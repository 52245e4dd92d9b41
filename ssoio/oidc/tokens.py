"""Access-token verification: the one place that decides whether a token is genuine,
current and meant for us.

Order of checks (each refusal raises the error with its stable code):

1. size and structure (``compact.parse_compact``): malformed tokens, JWE, ``alg: none``,
   ``crit``; opaque tokens go to RFC 7662 introspection when an issuer configures it;
2. the issuer is chosen by the token's ``iss`` claim, matched exactly against the
   configured issuers; nothing in the header (``jku``, ``x5u``, ``jwk``, ``x5c``) is
   ever used to find a key;
3. ``alg`` against the issuer's allow-list, then ``typ`` (RFC 9068 §4);
4. the key from the key store by (issuer, JWKS URL, kid), then the signature;
5. the claims (``claims.check_access_token``).

Verified tokens are cached by their SHA-256, so a reconnecting client does not pay for a
second signature check; every hit checks ``exp`` again, so a cached token expires on time,
and checks that the key which verified it is still published (by its RFC 7638 thumbprint),
so a key withdrawn by the provider stops admitting the tokens it signed at the next fetch
of the key set (connections already open keep running until their token expires or is
refreshed, as they would after any other change at the provider).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cachetools import LRUCache

from ssoio.clock import Clock
from ssoio.config.model import IssuerSettings, Settings
from ssoio.errors import AlgorithmNotAllowed, IssuerUnknown, TokenMalformed, TokenMissing
from ssoio.oidc.claims import ClaimRules, check_access_token, check_token_type
from ssoio.oidc.compact import parse_compact
from ssoio.oidc.introspection import Introspector, looks_opaque
from ssoio.oidc.jwks import KeyStore
from ssoio.oidc.mismatch import clip, nearest_issuer
from ssoio.oidc.signatures import check_signature
from ssoio.oidc.verified import VerifiedToken, fingerprint

__all__ = ["TokenVerifier", "VerifiedToken", "fingerprint"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Issuer:
    settings: IssuerSettings
    rules: ClaimRules
    algorithms: frozenset[str]


class TokenVerifier:
    """Verifies access tokens against the configured issuers.

    :param settings: the configuration (issuers and token limits).
    :param keys: the key store shared with other verifiers.
    :param clock: the time source; also drives the verified-token cache.
    :param introspector: RFC 7662 client for opaque tokens, when an issuer has one.
    """

    def __init__(
        self,
        settings: Settings,
        keys: KeyStore,
        *,
        clock: Clock,
        introspector: Introspector | None = None,
    ) -> None:
        self._max_bytes = settings.tokens.max_bytes
        self._keys = keys
        self._clock = clock
        self._introspector = introspector
        self._issuers = {
            i.issuer: _Issuer(
                i,
                ClaimRules.from_settings(i, settings.tokens.max_lifetime_s),
                frozenset(i.algorithms),
            )
            for i in settings.issuers
        }
        # An LRU bound plus an expiry check on every hit: a TLRU's heap costs more than
        # the check, and a cached token must stop verifying the moment it expires.
        # value: the verified token and the thumbprint of the key that verified it
        self._cache: LRUCache[bytes, tuple[VerifiedToken, str]] = LRUCache(
            maxsize=max(settings.tokens.cache_size, 1)
        )
        self._cache_enabled = settings.tokens.cache_size > 0
        self.cache_lookups = 0  # read by the metrics at scrape time
        self.cache_hits = 0

    async def verify(self, token: object) -> VerifiedToken:
        """Verify ``token`` and return what it proves.

        :raises AuthenticationError: a subclass whose ``code`` says why it was refused.
        """
        if not isinstance(token, str) or not token:
            raise TokenMissing(detail={"seen": "no token", "expected": "an access token"})
        if len(token) > self._max_bytes:
            raise TokenMalformed(
                f"the token is larger than {self._max_bytes} bytes",
                detail={"seen": {"bytes": len(token)}, "expected": {"max_bytes": self._max_bytes}},
            )
        key = fingerprint(token)
        cached = self._cache.get(key)
        self.cache_lookups += 1
        if cached is not None:
            verified, thumbprint = cached
            if self._clock() <= verified.expires_at + verified.issuer.leeway_s and (
                self._keys.publishes(verified.issuer, thumbprint)
            ):
                self.cache_hits += 1
                return verified
            # expired, or its key withdrawn: verified again below, and refused as
            # token_expired, key_unknown or signature_invalid
            del self._cache[key]
        if self._introspector is not None and looks_opaque(token):
            # The introspector caches by its own, shorter rules (introspection.cache_max_s).
            return await self._introspector.introspect(token, key)
        verified, thumbprint = await self._verify_jwt(token, key)
        if self._cache_enabled:
            self._cache[key] = (verified, thumbprint)
        return verified

    async def _verify_jwt(self, token: str, key: bytes) -> tuple[VerifiedToken, str]:
        try:
            jws = parse_compact(token, self._max_bytes)
        except TokenMalformed as refusal:
            raise refusal.explained(seen=_shape(token), expected=_COMPACT) from None
        issuer = self._issuer_of(jws.claims)
        if jws.alg not in issuer.algorithms:
            raise AlgorithmNotAllowed(
                detail={
                    "seen": {"alg": clip(jws.alg)},
                    "expected": {"algorithms": sorted(issuer.algorithms)},
                    "hint": f"add {clip(jws.alg)!r} to issuers.algorithms if the provider signs so",
                }
            )
        check_token_type(jws.header, issuer.rules)
        signer = await check_signature(self._keys, issuer.settings, jws)
        expires_at = check_access_token(jws.claims, issuer.rules, self._clock())
        verified = VerifiedToken(issuer.settings, MappingProxyType(jws.claims), expires_at, key)
        return verified, self._keys.thumbprint(issuer.settings, signer)

    def _issuer_of(self, claims: Mapping[str, Any]) -> _Issuer:
        iss = claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise IssuerUnknown(detail=self._issuer_detail(iss))
        return issuer

    def _issuer_detail(self, iss: object) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "seen": {"iss": clip(iss)},
            "expected": {"issuers": sorted(self._issuers)},
        }
        near = nearest_issuer(iss, self._issuers) if isinstance(iss, str) else None
        if near is not None:
            detail["hint"] = f"{near[1]}; issuers.issuer must be exactly {clip(iss)!r}"
        return detail


_COMPACT = "a compact JWS: three base64url parts separated by dots"


def _shape(token: str) -> dict[str, Any]:
    """What a malformed token looked like, without any of its content."""
    return {"parts": token.count(".") + 1, "bytes": len(token)}
