"""A cluster-shared connect budget (``cluster.state.RedisRateLimiter``) against a real
redis-server: a token spent by an attempt that then authenticated is given back on every
node (issue #20), never beyond the burst."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from redis import asyncio as aioredis

from ssoio.audit import Observer
from ssoio.cluster.state import RedisRateLimiter
from ssoio.config.server import BucketSettings
from ssoio.realtime.ratelimit import RateLimiter
from tests.support.clock import FakeClock

from .redis_server import RedisServer

pytestmark = pytest.mark.interop

BUCKET = BucketSettings(rate=0.01, burst=3)


@dataclass
class Seen:
    """An ``audit.EventSink`` keeping what the limiter reported (fallbacks to local)."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def observe(self, event: str, fields: dict[str, Any]) -> None:
        self.events.append((event, fields))


def limiter(redis: aioredis.Redis, clock: FakeClock, seen: Seen) -> RedisRateLimiter:
    local = RateLimiter(BUCKET, clock, 100)
    return RedisRateLimiter(redis, "test:limit:connects", local, BUCKET.rate, BUCKET.burst,
                            clock, Observer(seen))  # fmt: skip


async def test_a_refund_is_shared_by_every_node_and_bounded_by_the_burst() -> None:
    server = await RedisServer.start()
    redis = aioredis.Redis.from_url(server.url)
    clock, seen = FakeClock(), Seen()
    try:
        node_a, node_b = limiter(redis, clock, seen), limiter(redis, clock, seen)
        assert [await node_a.allow("198.51.100.7") for _ in range(4)] == [True] * 3 + [False]
        await node_a.refund("198.51.100.7")  # the attempt authenticated
        assert [await node_b.allow("198.51.100.7") for _ in range(2)] == [True, False]
        for _ in range(10):
            await node_b.refund("198.51.100.7")
        assert [await node_a.allow("198.51.100.7") for _ in range(4)] == [True] * 3 + [False]
        await node_a.refund("never-seen")  # nothing to give back; no error
        assert seen.events == []
    finally:
        await redis.aclose()
        await server.stop()
