"""The key store: each issuer's published signing keys, cached, rotated in one place.

Keys live in one cachetools ``TLRUCache`` keyed by ``(issuer, jwks_url, kid)``, so a key
published by one issuer can never verify another issuer's token, even when both use the
same ``kid`` (keying by ``kid`` alone caused a real CVE in a peer server).

* Hot path: a cached key is returned without any I/O, even when the set is due for a
  refresh (the refresh then runs in the background).
* Unknown ``kid``: the set is refetched, single-flight, at most once per
  ``keys.refetch_cooldown_s``, so a flood of tokens with random kids costs the provider at
  most one request per cool-down.
* Provider down: keys from the last good fetch keep serving for ``keys.stale_limit_s``.
* Withdrawal: a key absent from a successful refetch stops verifying at once, and
  ``publishes`` tells the verified-token cache so (by RFC 7638 thumbprint), so a token
  verified before the rotation is not accepted from the cache afterwards.
* In the background (``fetch_now``, driven by ``IdentityProviders.keep_fresh``) keys are
  loaded without waiting for a client, retried with a back-off while the provider is down.
* Bounded input: the JWKS body size and the number of keys are capped; keys that cannot
  be parsed, are not for signatures, or have an unknown ``kty`` are skipped
  (RFC 7517 §5: "ignore JWKs ... that it does not understand").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cachetools import TLRUCache
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry

from ssoio.audit import Observer
from ssoio.clock import Clock
from ssoio.config.model import HMAC_ALGORITHMS, IssuerSettings
from ssoio.errors import AlgorithmNotAllowed, AuthenticationError, IdpUnavailable, KeyUnknown
from ssoio.oidc.backoff import retry_delay
from ssoio.oidc.discovery import Discovery
from ssoio.oidc.http import fetch_json

__all__ = ["KeySet", "KeyStatus", "KeyStore", "kid_detail", "parse_jwks"]

log = logging.getLogger(__name__)

_MAX_KID_LENGTH = 256
CacheKey = tuple[str, str, str | None]


@dataclass(frozen=True, slots=True)
class KeySet:
    """A parsed JWK set: keys by ``kid`` (``None`` holds every key, for kid-less tokens)."""

    by_kid: dict[str | None, tuple[Key, ...]]
    asymmetric: bool


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """What the store knows of one issuer, for readiness checks and metrics."""

    loaded: bool
    fresh: bool
    age_s: float | None
    kids: tuple[str, ...]
    fetches: int
    failures: int


@dataclass(frozen=True, slots=True)
class _Cached:
    keys: tuple[Key, ...]
    expires_at: float
    asymmetric: bool
    # alg -> the selected key, or the refusal; selection is pure, so it is computed once.
    chosen: dict[str, Key | AuthenticationError] = field(default_factory=dict)

    def select(self, kid: str | None, alg: str) -> Key:
        choice = self.chosen.get(alg)
        if choice is None:
            try:
                choice = _select(self.keys, kid, alg, self.asymmetric)
            except AuthenticationError as refusal:
                choice = refusal
            self.chosen[alg] = choice
        if isinstance(choice, AuthenticationError):
            # a fresh instance: each refusal gets its own operator detail
            raise type(choice)(choice.message, claim=choice.claim)
        return choice


@dataclass(slots=True)
class _IssuerState:
    jwks_url: str | None
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    inflight: asyncio.Task[bool] | None = None
    kids: tuple[str, ...] = ()
    thumbprints: frozenset[str] = frozenset()  # RFC 7638, of every key now published
    thumbprint_of: dict[int, str] = field(default_factory=dict)  # id(key) -> its thumbprint
    fetches: int = 0
    failures: int = 0
    failing: int = 0  # consecutive failed fetches, for the retry back-off
    failure: dict[str, Any] = field(default_factory=dict)  # operator detail of the last one


def parse_jwks(document: dict[str, Any], max_keys: int) -> KeySet:
    """Parse a JWK set document (RFC 7517 §5), keeping only usable signature keys.

    :raises IdpUnavailable: when the document is not a key set, holds more than
        ``max_keys`` keys, or has no usable key at all.
    """
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise IdpUnavailable("the provider's JWKS is not a key set")
    if len(entries) > max_keys:
        raise IdpUnavailable(f"the provider's JWKS has more than {max_keys} keys")
    by_kid: dict[str | None, list[Key]] = {None: []}
    for entry in entries:
        key = _import_key(entry)
        if key is not None:
            by_kid[None].append(key)
            if key.kid is not None:
                by_kid.setdefault(key.kid, []).append(key)
    if not by_kid[None]:
        raise IdpUnavailable("the provider's JWKS has no usable signing key")
    return KeySet(
        by_kid={kid: tuple(keys) for kid, keys in by_kid.items()},
        asymmetric=any(key.key_type != "oct" for key in by_kid[None]),
    )


def _import_key(entry: object) -> Key | None:
    if not isinstance(entry, dict):
        return None
    kid = entry.get("kid")
    if kid is not None and (not isinstance(kid, str) or len(kid) > _MAX_KID_LENGTH):
        return None
    if entry.get("use", "sig") != "sig":  # RFC 7517 §4.2: "enc" keys never verify signatures
        return None
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    try:
        with warnings.catch_warnings():
            # joserfc only warns about an HMAC secret under 112 bits (NIST SP 800-131A) or
            # one that looks like a PEM key; either is a key nobody should verify with
            warnings.simplefilter("error", SecurityWarning)
            return JWKRegistry.import_key(entry)
    except (JoseError, SecurityWarning, ValueError, TypeError, KeyError) as exc:
        log.warning("jwks.key.skipped kid=%.64r reason=%s", kid, type(exc).__name__)
        return None


class KeyStore:
    """Every trusted issuer's signing keys; see the module docstring for the rules."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        discovery: Discovery,
        clock: Clock,
        *,
        max_entries: int = 4096,
        observe: Observer | None = None,
    ) -> None:
        self._observe = observe or Observer()
        self._http = http
        self._discovery = discovery
        self._clock = clock
        self._states: dict[str, _IssuerState] = {}
        self._cache: TLRUCache[CacheKey, _Cached] = TLRUCache(
            maxsize=max_entries, ttu=lambda _key, value, _now: value.expires_at, timer=clock
        )

    async def key_for(self, issuer: IssuerSettings, kid: str | None, alg: str) -> Key:
        """The one key of ``issuer`` that may verify a token with this ``kid`` and ``alg``.

        :raises KeyUnknown: no published key fits.
        :raises AlgorithmNotAllowed: HMAC asked of an issuer with asymmetric keys.
        :raises IdpUnavailable: no keys could be loaded.
        """
        key = self.cached_key(issuer, kid, alg)
        if key is not None:
            return key
        state = self._state(issuer)
        await self._refetch(issuer, state)
        cached = self._lookup(issuer, state, kid)
        if cached is None:
            if self._lookup(issuer, state, None) is None:  # no key set at all
                raise IdpUnavailable("the issuer's signing keys cannot be loaded", detail={
                    "seen": {"fetches": state.fetches, "failures": state.failures},
                    "expected": "the issuer's JWKS, fetched through its discovery document",
                    "last_failure": state.failure,
                })  # fmt: skip
            raise KeyUnknown(detail=kid_detail(kid, alg, state.kids, issuer))
        return cached.select(kid, alg)

    def known_kids(self, issuer: IssuerSettings) -> tuple[str, ...]:
        """The kids of ``issuer``'s last successful fetch (for operator messages)."""
        return self._state(issuer).kids

    def cached_key(self, issuer: IssuerSettings, kid: str | None, alg: str) -> Key | None:
        """``key_for`` without I/O: the key when cached, else ``None``.

        A set due for refresh is still used; the refresh starts in the background.
        """
        state = self._state(issuer)
        cached = self._lookup(issuer, state, kid)
        if cached is None:
            return None
        if self._clock() - state.fetched_at >= issuer.keys.jwks_ttl_s:
            self._start_fetch(issuer, state)
        return cached.select(kid, alg)

    async def refresh(self, issuer: IssuerSettings) -> None:
        """Fetch ``issuer``'s keys now (start-up warm-up), within the cool-down."""
        await self._refetch(issuer, self._state(issuer))

    async def fetch_now(self, issuer: IssuerSettings) -> bool:
        """Fetch ``issuer``'s keys now, whatever the cool-down (the background refresher
        keeps its own back-off); joins a fetch already under way. True when it succeeded."""
        state = self._state(issuer)
        if state.inflight is None:
            state.attempted_at = self._clock()
            state.inflight = asyncio.create_task(self._fetch(issuer, state, force=True))
        return await asyncio.shield(state.inflight)

    def thumbprint(self, issuer: IssuerSettings, key: Key) -> str:
        """The RFC 7638 thumbprint of one of ``issuer``'s keys."""
        state = self._states.get(issuer.issuer)
        known = state.thumbprint_of.get(id(key)) if state is not None else None
        return known if known is not None else key.thumbprint()

    def publishes(self, issuer: IssuerSettings, thumbprint: str) -> bool:
        """Whether the key with this RFC 7638 thumbprint is still one of ``issuer``'s
        (published at the last successful fetch, and that fetch within the stale limit)."""
        state = self._states.get(issuer.issuer)
        if state is None or thumbprint not in state.thumbprints:
            return False
        # what the cache's own expiry (_install: fetched_at + stale_limit_s) says, cheaper
        return self._clock() - state.fetched_at < issuer.keys.stale_limit_s

    def status(self, issuer: IssuerSettings) -> KeyStatus:
        """What is known of ``issuer``'s keys at this moment."""
        state = self._state(issuer)
        loaded = self._lookup(issuer, state, None) is not None
        age = self._clock() - state.fetched_at if loaded else None
        return KeyStatus(
            loaded=loaded,
            fresh=age is not None and age < issuer.keys.jwks_ttl_s,
            age_s=age,
            kids=state.kids,
            fetches=state.fetches,
            failures=state.failures,
        )

    def _state(self, issuer: IssuerSettings) -> _IssuerState:
        state = self._states.get(issuer.issuer)
        if state is None:
            state = self._states[issuer.issuer] = _IssuerState(jwks_url=issuer.jwks_uri)
        return state

    def _lookup(
        self, issuer: IssuerSettings, state: _IssuerState, kid: str | None
    ) -> _Cached | None:
        if state.jwks_url is None:
            return None
        return self._cache.get((issuer.issuer, state.jwks_url, kid))

    async def _refetch(self, issuer: IssuerSettings, state: _IssuerState) -> None:
        task = self._start_fetch(issuer, state)
        if task is not None:
            # shield: a cancelled caller must not cancel the fetch other callers share
            await asyncio.shield(task)

    def _start_fetch(
        self, issuer: IssuerSettings, state: _IssuerState
    ) -> asyncio.Task[bool] | None:
        if state.inflight is None:
            now = self._clock()
            if now - state.attempted_at < retry_delay(
                issuer.keys.refetch_cooldown_s, state.failing
            ):
                return None
            state.attempted_at = now
            state.inflight = asyncio.create_task(self._fetch(issuer, state))
        return state.inflight

    async def _fetch(
        self, issuer: IssuerSettings, state: _IssuerState, *, force: bool = False
    ) -> bool:
        state.fetches += 1
        try:
            url = await self._jwks_url(issuer, force)
            document = await fetch_json(
                self._http, url, max_bytes=issuer.keys.max_jwks_bytes,
                timeout_s=issuer.keys.http_timeout_s,
            )  # fmt: skip
            key_set = parse_jwks(document, issuer.keys.max_keys)
        except IdpUnavailable as exc:
            state.failures += 1
            state.failing += 1
            state.failure = {**exc.detail, "reason": exc.message}
            self._observe("key.fetch", issuer=issuer.name, result="failed", reason=exc.message,
                          **({"detail": exc.detail} if exc.detail else {}))  # fmt: skip
            return False
        finally:
            state.inflight = None
        state.failing = 0
        self._observe("key.fetch", issuer=issuer.name, result="ok", keys=len(key_set.by_kid) - 1)
        self._install(issuer, state, url, key_set)
        return True

    async def _jwks_url(self, issuer: IssuerSettings, force: bool) -> str:
        if issuer.jwks_uri is None:
            return (await self._discovery.get(issuer, force=force)).jwks_uri
        if issuer.claims.preset == "auto":  # the preset is chosen from the metadata
            with contextlib.suppress(IdpUnavailable):
                await self._discovery.get(issuer, force=force)
        return issuer.jwks_uri

    def _install(
        self, issuer: IssuerSettings, state: _IssuerState, url: str, key_set: KeySet
    ) -> None:
        now = self._clock()
        for key in [k for k in list(self._cache.keys()) if k[0] == issuer.issuer]:
            self._cache.pop(key, None)  # keys withdrawn by the provider stop verifying now
        expires_at = now + issuer.keys.stale_limit_s
        for kid, keys in key_set.by_kid.items():
            self._cache[(issuer.issuer, url, kid)] = _Cached(keys, expires_at, key_set.asymmetric)
        kids = tuple(sorted(k for k in key_set.by_kid if k is not None))
        if kids != state.kids:
            added, removed = (
                sorted(set(kids) - set(state.kids)),
                sorted(set(state.kids) - set(kids)),
            )
            self._observe("key.rotated", issuer=issuer.name, added=added, removed=removed)
        state.jwks_url, state.fetched_at = url, now
        state.kids = kids
        # computed once per key set (a SHA-256 over the key's JSON: ~25 µs per connect
        # when it was computed for each verified token); the state holds the keys, so
        # their ids stay theirs while in the map
        state.thumbprint_of = {id(key): key.thumbprint() for key in key_set.by_kid[None]}
        state.thumbprints = frozenset(state.thumbprint_of.values())


def kid_detail(
    kid: str | None, alg: str, kids: tuple[str, ...], issuer: IssuerSettings
) -> dict[str, Any]:
    hint = (
        "a key the provider no longer (or not yet) publishes: a token from before a rotation, "
        f"or from another realm or provider; keys are refetched at most every "
        f"{issuer.keys.refetch_cooldown_s:g} s (keys.refetch_cooldown_s)"
        if kid is not None and kid not in kids
        else "no published key has this key type and algorithm"
    )
    return {
        "seen": {"kid": kid if kid is None else kid[: _MAX_KID_LENGTH // 2], "alg": alg},
        "expected": {"kids": list(kids)},
        "hint": hint,
    }


def _select(candidates: Iterable[Key], kid: str | None, alg: str, asymmetric: bool) -> Key:
    # Key confusion (RFC 8725 §3.1): an HMAC "signature" keyed with a public key anyone
    # can download proves nothing, so HMAC is refused whenever the issuer publishes
    # asymmetric keys.
    if alg in HMAC_ALGORITHMS and asymmetric:
        raise AlgorithmNotAllowed("HMAC tokens are refused from an issuer with public keys")
    model = JWSRegistry.algorithms[alg]
    curve = getattr(model, "curve", None)
    fitting = [
        key
        for key in candidates
        if key.key_type == model.key_type
        and key.get("alg") in (None, alg)
        and (curve is None or getattr(key, "curve_name", None) == curve)
    ]
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        raise KeyUnknown("no published key fits the token's kid and algorithm")
    raise KeyUnknown("the token's key is ambiguous" if kid else "the token names no key (kid)")
