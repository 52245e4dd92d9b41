"""The Redis store of connection state recovery against a real redis-server: one order
over rooms, gaps, records, and Redis going away (the node's pooled connections survive a
Redis restart; events delivered while Redis was unreachable are never taken as logged)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ssoio.audit import Observer
from ssoio.cluster.bus import ClusterBus
from ssoio.cluster.recovery import RedisRecoveryStore
from ssoio.config.cluster import ClusterSettings
from ssoio.realtime.recovery_log import (
    LoggedEvent,
    SessionRecord,
    StoreUnavailable,
    new_pid,
    parse_offset,
)

from .provider import require_tool
from .redis_server import RedisServer

pytestmark = pytest.mark.interop


@pytest_asyncio.fixture(loop_scope="session")
async def redis() -> AsyncIterator[RedisServer]:
    require_tool("redis-server")
    server = await RedisServer.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def store(redis: RedisServer) -> AsyncIterator[RedisRecoveryStore]:
    # the cluster bus's Redis client, as a node uses it
    bus = ClusterBus(ClusterSettings(redis_url=redis.url), Observer())
    yield RedisRecoveryStore(bus.redis, "t", keep_s=120, per_room=3, max_rooms=100)
    await bus.redis.aclose()


def event(room: str, number: int) -> LoggedEvent:
    return LoggedEvent("", room, "chat:message", {"n": number})


async def test_one_order_over_rooms_and_a_trimmed_gap(store: RedisRecoveryStore) -> None:
    start = parse_offset(await store.head()) or (0, 0)
    offsets = [await store.append(event("ab"[n % 2], n)) for n in range(4)]
    ordered = [parse_offset(o) or (0, 0) for o in offsets]
    assert ordered == sorted(ordered)
    read = await store.read(["a", "b"], start, 100)
    assert [e.payload["n"] for e in read] == [0, 1, 2, 3]
    for n in range(4, 10):  # room "a" keeps 3 (max_events_per_room): its early ones go
        await store.append(event("a", n))
    with pytest.raises(LookupError):
        await store.read(["a"], start, 100)
    with pytest.raises(OverflowError):  # more missed than max_replay
        await store.read(["b"], start, 1)


async def test_records_are_taken_once_and_killed_ones_stay_dead(store: RedisRecoveryStore) -> None:
    record = SessionRecord(new_pid(), "primary", "alice", "/", ("a",), "0-0",
                           web_session="w", disconnected_at=1.0)  # fmt: skip
    await store.save(record)
    assert await store.take(record.pid) == record
    assert await store.take(record.pid) is None
    await store.save(record)
    assert await store.kill_matching("web_session", ("w",)) == 1
    await store.save(record)  # a late write of a killed session
    assert await store.take(record.pid) is None


async def test_a_redis_restart_does_not_lose_the_next_event(
    store: RedisRecoveryStore, redis: RedisServer
) -> None:
    await store.append(event("a", 0))
    await redis.stop()
    await redis.restart()  # the pooled connections are dead: retried on a new one
    offset = await store.append(event("a", 1))
    assert [e.offset for e in await store.read(["a"], (0, 0), 100)] == [offset]


async def test_events_delivered_while_redis_was_away_make_a_gap(
    store: RedisRecoveryStore, redis: RedisServer
) -> None:
    before = parse_offset(await store.append(event("a", 0))) or (0, 0)
    await redis.stop()
    with pytest.raises(StoreUnavailable):
        await store.append(event("a", 1))  # delivered without an offset
    await redis.restart()
    after = await store.append(event("a", 2))
    with pytest.raises(LookupError):  # a recovery from before the hole: refused
        await store.read(["a"], before, 100)
    assert await store.read(["a"], parse_offset(after) or (0, 0), 100) == []
