"""Token buckets, kept in a bounded cachetools LRU so keys cannot grow without limit."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from cachetools import LRUCache

from ssoio.clock import Clock
from ssoio.config.server import BucketSettings

__all__ = ["RateLimiter", "TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; starts full."""

    rate: float
    burst: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, settings: BucketSettings, now: float) -> TokenBucket:
        return cls(settings.rate, settings.burst, settings.burst, now)

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def has_token(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= 1

    def give_back(self, now: float) -> None:
        """Return one token spent earlier (never above ``burst``)."""
        self._refill(now)
        self.tokens = min(self.burst, self.tokens + 1)


class RateLimiter:
    """One bucket per key (client IP, user...), the least recently used forgotten first.

    Forgetting a key gives it a full bucket again, which errs on the side of the client;
    ``max_keys`` bounds memory under a flood of distinct keys.
    """

    def __init__(self, settings: BucketSettings, clock: Clock, max_keys: int) -> None:
        self._settings = settings
        self._clock = clock
        self._buckets: LRUCache[Hashable, TokenBucket] = LRUCache(maxsize=max_keys)

    def _bucket(self, key: Hashable) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket.full(self._settings, self._clock())
        return bucket

    def take(self, key: Hashable) -> bool:
        """Spend one token of ``key``'s bucket; False when it is empty."""
        return self._bucket(key).take(self._clock())

    async def allow(self, key: Hashable) -> bool:
        """``take``, with the interface the cluster's shared limiter also has."""
        return self.take(key)

    async def peek(self, key: Hashable) -> bool:
        """``has_token``, with the interface the cluster's shared limiter also has."""
        return self.has_token(key)

    async def refund(self, key: Hashable) -> None:
        """Give back a token ``allow`` spent (an attempt that turned out to be paid for
        elsewhere); a forgotten key is full already."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.give_back(self._clock())

    def has_token(self, key: Hashable) -> bool:
        """Whether ``key`` could spend a token now, without spending it."""
        bucket = self._buckets.get(key)
        return bucket is None or bucket.has_token(self._clock())

    def __len__(self) -> int:
        return len(self._buckets)
