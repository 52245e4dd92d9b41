"""The Redis store of connection state recovery against a real redis-server: one order
over rooms, gaps, records, and Redis going away (the node's pooled connections survive a
Redis restart; events delivered while Redis was unreachable are never taken as logged),
and logged events reaching every node's bus in the log's order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio

from ssoio.audit import Observer
from ssoio.cluster.bus import ClusterBus
from ssoio.cluster.recovery import LOGGED, Announce, RedisRecoveryStore
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
    assert await store.kill_matching("web_session", ("w",), 2.0) == 1
    await store.save(record)  # a late write of a killed session
    assert await store.take(record.pid) is None


async def test_a_save_under_way_when_its_session_ended_is_refused(
    store: RedisRecoveryStore,
) -> None:
    """A logout's kill finds no record of a socket that had just gone away (its save was
    still under way); the save that lands after it is refused by the session's end mark,
    whichever node writes it."""
    for kind, key in (("web_session", ("w-ended",)), ("idp_session", ("primary", "s-ended"))):
        assert await store.kill_matching(kind, key, 2.0) == 0
        late = SessionRecord(new_pid(), "primary", "alice", "/", ("a",), "0-0",
                             web_session="w-ended" if kind == "web_session" else "w-live",
                             idp_session="s-ended" if kind == "idp_session" else None,
                             disconnected_at=1.0)  # fmt: skip
        await store.save(late)
        assert await store.take(late.pid) is None, kind


@pytest.mark.parametrize("issuer", ["primary", ""])
async def test_a_save_under_way_when_its_user_was_kicked_is_refused(
    store: RedisRecoveryStore, issuer: str
) -> None:
    """The same for a kick of the user (of that issuer, or of every issuer), whose mark is
    its time: a socket away by then is refused; one that went away after the kick (it
    connected again), another user, the same ``sub`` at another issuer and a live record
    are written."""
    late = SessionRecord(new_pid(), "primary", f"kicked-{issuer}", "/", ("a",), "0-0",
                         web_session="w-k", idp_session="s-k", disconnected_at=10.5)  # fmt: skip
    assert await store.kill_matching("user", (issuer, late.subject), 10.75) == 0
    await store.save(late)
    assert await store.take(late.pid) is None
    untouched = [replace(late, pid=new_pid(), subject="bob"),
                 replace(late, pid=new_pid(), disconnected_at=11.0),
                 replace(late, pid=new_pid(), disconnected_at=None)]  # fmt: skip
    if issuer:
        untouched.append(replace(late, pid=new_pid(), issuer="partner"))
    for record in untouched:
        await store.save(record)
        assert await store.take(record.pid) == record


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


def announcing_store(bus: ClusterBus, received: list[str]) -> RedisRecoveryStore:
    """A node's store and bus as ``cluster.node`` joins them, the bus's handler recording
    the offsets it is handed."""

    async def logged(body: dict[str, Any]) -> None:
        received.append(str(body["offset"]))
        await asyncio.sleep(0)  # (a delivery gives the loop a turn)

    bus.handlers[LOGGED] = logged
    bus.echoed.add(LOGGED)
    channel, start = bus.framing(LOGGED)
    announce = Announce(channel, start, lambda: bus.listening)
    return RedisRecoveryStore(bus.redis, "order", keep_s=120, per_room=10_000, max_rooms=100,
                              announce=announce)  # fmt: skip


async def test_two_nodes_logging_at_once_deliver_in_the_log_order(redis: RedisServer) -> None:
    """Bursts of concurrent appends from two nodes into the same rooms: each node's bus
    hands every logged event over once, its own too, offsets strictly increasing."""
    received: dict[str, list[str]] = {"a": [], "b": []}
    buses = {name: ClusterBus(ClusterSettings(redis_url=redis.url, node_id=name,
                                              channel="order"), Observer())
             for name in received}  # fmt: skip
    stores = {name: announcing_store(bus, received[name]) for name, bus in buses.items()}
    for bus in buses.values():
        await bus.start()
    try:
        assert all(store.announcing() for store in stores.values())

        async def burst(name: str) -> list[str]:
            appends = (stores[name].append(event("ab"[n % 2], n), announce=True) for n in range(50))
            return list(await asyncio.gather(*appends))

        logged: list[str] = []
        for _ in range(6):
            for offsets in await asyncio.gather(burst("a"), burst("b")):
                logged += offsets
        for _ in range(200):  # bounded: 10 s
            if all(len(got) >= len(logged) for got in received.values()):
                break
            await asyncio.sleep(0.05)
    finally:
        for bus in buses.values():
            await bus.stop()
    in_order = sorted(logged, key=lambda offset: parse_offset(offset) or (0, 0))
    assert len(set(logged)) == len(logged) == 600
    assert received["a"] == in_order
    assert received["b"] == in_order
