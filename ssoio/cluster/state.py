"""Shared state of a cluster in Redis: browser sessions, global rate limits, the
back-channel logout replay cache.

* Sessions are stored encrypted (Fernet, keyed from ``login.session_secret``) under a
  hash of their id: reading Redis yields neither usable tokens nor valid session ids.
* Rate limits are GCRA token buckets in one atomic Lua script per check, so a client
  spreading its attempts over nodes meets one budget. When Redis cannot be reached, each
  node falls back to its own buckets (still limited, per node) and says so.
* Redis errors on sessions become ``ClusterUnavailable`` (wire code
  ``cluster_unavailable``); callers answer with it rather than guessing.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar

from cryptography.fernet import Fernet, InvalidToken
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from ssoio.audit import Observer
from ssoio.clock import Clock
from ssoio.errors import ClusterUnavailable
from ssoio.realtime.ratelimit import RateLimiter

__all__ = ["RedisRateLimiter", "RedisReplayCache", "RedisSessionStore", "StoredSession"]

_FAILURES = (RedisError, OSError, TimeoutError)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class StoredSession(Protocol):
    """What the store reads of a session (``web.sessions.WebSession``): its id, its end,
    and the identity it is indexed by for logouts."""

    id: str
    expires_at: float
    issuer: str | None
    subject: str | None
    idp_session: str | None

    def as_dict(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=StoredSession)


class RedisSessionStore(Generic[S]):
    """``SessionStore`` in Redis, so any node serves any browser session.

    :param decode: a session from the fields its ``as_dict`` gave (the store knows
        sessions only as ``StoredSession``s: the web package defines them).
    """

    def __init__(
        self, redis: aioredis.Redis, prefix: str, secret: str, clock: Clock,
        decode: Callable[[dict[str, Any]], S],
    ) -> None:  # fmt: skip
        self._decode = decode
        self._redis = redis
        self._prefix = prefix
        key = hashlib.sha256(f"ssoio-session-store:{secret}".encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._clock = clock

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}:session:{_digest(session_id)}"

    def _index(self, kind: str, issuer: str, value: str) -> str:
        return f"{self._prefix}:sessions:{kind}:{_digest(issuer + chr(0) + value)}"

    async def load(self, session_id: str) -> S | None:
        try:
            blob = await self._redis.get(self._key(session_id))
        except _FAILURES as exc:
            raise ClusterUnavailable() from exc
        if blob is None:
            return None
        try:
            fields = json.loads(self._fernet.decrypt(blob))
        except (InvalidToken, ValueError):
            return None
        session = self._decode(fields)
        return session if session.expires_at > self._clock() else None

    async def save(self, session: S) -> None:
        ttl_ms = max(1, int((session.expires_at - self._clock()) * 1000))
        blob = self._fernet.encrypt(json.dumps(session.as_dict()).encode())
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._key(session.id), blob, px=ttl_ms)
                for index in self._indexes(session):
                    pipe.sadd(index, session.id)
                    pipe.pexpire(index, ttl_ms, gt=True)
                    pipe.pexpire(index, ttl_ms, nx=True)
                await pipe.execute()
        except _FAILURES as exc:
            raise ClusterUnavailable() from exc

    def _indexes(self, session: S) -> list[str]:
        if session.issuer is None:
            return []
        keys = []
        if session.idp_session:
            keys.append(self._index("idp", session.issuer, session.idp_session))
        if session.subject:
            keys.append(self._index("sub", session.issuer, session.subject))
        return keys

    async def delete(self, session_id: str) -> None:
        try:
            await self._redis.delete(self._key(session_id))
        except _FAILURES as exc:
            raise ClusterUnavailable() from exc

    async def find(
        self, issuer: str, *, idp_session: str | None = None, subject: str | None = None
    ) -> list[str]:
        kind, value = ("idp", idp_session) if idp_session else ("sub", subject)
        if value is None:
            return []
        try:
            members = await self._redis.smembers(self._index(kind, issuer, value))
        except _FAILURES as exc:
            raise ClusterUnavailable() from exc
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def bind_token(self, fingerprint: bytes, session_id: str, until: float) -> None:
        """The token of ``fingerprint`` belongs to ``session_id`` (stored encrypted: Redis
        holds no usable session id) until ``until``."""
        ttl_ms = max(1, int((until - self._clock()) * 1000))
        blob = self._fernet.encrypt(session_id.encode())
        try:
            await self._redis.set(self._token_key(fingerprint), blob, px=ttl_ms)
        except _FAILURES as exc:
            raise ClusterUnavailable() from exc

    async def token_session(self, fingerprint: bytes) -> str | None:
        try:
            blob = await self._redis.get(self._token_key(fingerprint))
        except _FAILURES as exc:
            raise ClusterUnavailable() from exc
        if blob is None:
            return None
        try:
            return self._fernet.decrypt(blob).decode()
        except (InvalidToken, UnicodeError):
            return None

    def _token_key(self, fingerprint: bytes) -> str:
        return f"{self._prefix}:token:{fingerprint.hex()}"


# GCRA (a token bucket as one "theoretical arrival time"): allow when the bucket would
# not overflow; one round trip, atomic across nodes.
_GCRA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
local now, interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > burst * interval then return 0 end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) * 1000) + 1)
end
return 1
"""
# A token given back: the arrival time moves one interval earlier (never before now).
_REFUND = """
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local now, interval = tonumber(ARGV[1]), tonumber(ARGV[2])
local new_tat = tat - interval
if new_tat <= now then redis.call('DEL', KEYS[1]) return 1 end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) * 1000) + 1)
return 1
"""


class RedisRateLimiter:
    """A ``RateLimiter`` shared by every node; falls back to a local one on Redis errors."""

    def __init__(self, redis: aioredis.Redis, prefix: str, local: RateLimiter,
                 rate: float, burst: int, clock: Clock, observe: Observer) -> None:  # fmt: skip
        self._redis = redis
        self._prefix = prefix
        self._local = local
        self._interval = 1.0 / rate
        self._burst = burst
        self._clock = clock
        self._observe = observe
        self._script = redis.register_script(_GCRA)
        self._refund = redis.register_script(_REFUND)

    async def allow(self, key: Hashable) -> bool:
        return await self._check(key, spend=True)

    async def peek(self, key: Hashable) -> bool:
        return await self._check(key, spend=False)

    async def refund(self, key: Hashable) -> None:
        """Give back one token ``allow`` spent, on every node."""
        args = [self._clock(), self._interval]
        try:
            await self._refund(keys=[self._name(key)], args=args)
        except _FAILURES:
            self._observe("cluster.ratelimit.fallback", limit=self._prefix.split(":limit:", 1)[-1])
            await self._local.refund(key)

    def _name(self, key: Hashable) -> str:
        return f"{self._prefix}:{_digest(repr(key))}"

    async def _check(self, key: Hashable, *, spend: bool) -> bool:
        name = self._name(key)
        args = [self._clock(), self._interval, self._burst, "1" if spend else "0"]
        try:
            return bool(await self._script(keys=[name], args=args))
        except _FAILURES:
            self._observe("cluster.ratelimit.fallback", limit=self._prefix.split(":limit:", 1)[-1])
            return await (self._local.allow(key) if spend else self._local.peek(key))


class RedisReplayCache:
    """Back-channel logout ``jti``s seen by any node (BCL 1.0 §2.6 step 7)."""

    def __init__(self, redis: aioredis.Redis, prefix: str, ttl_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl_ms = int(ttl_s * 1000)

    async def first_use(self, issuer: str, jti: str) -> bool | None:
        """True the first time, False on a replay, None when Redis cannot tell."""
        try:
            key = f"{self._prefix}:{_digest(issuer + chr(0) + jti)}"
            added = await self._redis.set(key, "1", nx=True, px=self._ttl_ms)
        except _FAILURES:
            return None
        return bool(added)
