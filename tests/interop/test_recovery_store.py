"""The Redis store of connection state recovery against a real redis-server: one order
over rooms, gaps, records, and Redis going away (the node's pooled connections survive a
Redis restart; events delivered while Redis was unreachable are never taken as logged),
and logged events reaching every node's bus in the log's order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from redis import asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeout

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


async def announced_once(
    redis: RedisServer, append: Callable[[RedisRecoveryStore], Awaitable[str]]
) -> tuple[str | None, list[str]]:
    """Run ``append`` on an announcing node's store: its offset (None: StoreUnavailable)
    and what the node's bus was handed, 3.5 s later (anything the script did late too)."""
    received: list[str] = []
    bus = ClusterBus(ClusterSettings(redis_url=redis.url, node_id="n", channel="once"),
                     Observer())  # fmt: skip
    store = announcing_store(bus, received)
    await bus.start()
    try:
        try:
            offset: str | None = await append(store)
        except StoreUnavailable:
            offset = None
        await asyncio.sleep(3.5)
    finally:
        await bus.stop()
    return offset, received


async def test_a_timed_out_append_that_ran_is_announced_not_delivered_again(
    redis: RedisServer,
) -> None:
    """The script ran (logged and published) but its answer was lost (a timeout): the
    store finds it out and answers the offset, so the caller does not deliver the event a
    second time, unlogged (before: every node delivered it twice)."""

    async def answer_lost(store: RedisRecoveryStore) -> str:
        script = store._append

        async def ran_then_timed_out(**kwargs: Any) -> Any:
            await script(**kwargs)
            raise RedisTimeout("Timeout reading from 127.0.0.1")

        store._append = ran_then_timed_out  # type: ignore[assignment]
        return await store.append(event("a", 1), announce=True)

    offset, received = await announced_once(redis, answer_lost)
    assert offset is not None
    assert received == [offset]


async def test_a_timed_out_append_that_did_not_run_never_runs(redis: RedisServer) -> None:
    """Redis stalled (here: CLIENT PAUSE) past the client's 2 s timeout: whether the script
    ran or not, the event is delivered once. Seen here: it did not run, and the store's fence
    makes sure it never does (the caller delivers the event unlogged)."""
    admin = aioredis.Redis.from_url(redis.url)
    timeouts: list[RedisTimeout] = []
    try:
        await admin.client_pause(3000, all=False)

        async def stalled(store: RedisRecoveryStore) -> str:
            script = store._append

            async def spied(**kwargs: Any) -> Any:
                try:
                    return await script(**kwargs)
                except RedisTimeout as timeout:
                    timeouts.append(timeout)
                    raise

            store._append = spied  # type: ignore[assignment]
            return await store.append(event("a", 2), announce=True)

        offset, received = await announced_once(redis, stalled)
    finally:
        await admin.client_unpause()
        await admin.aclose()
    assert len(timeouts) == 1  # the script's answer timed out
    assert received == ([offset] if offset else [])


async def test_the_cluster_client_never_sends_a_timed_out_command_again() -> None:
    """A command that timed out may have run: the cluster bus's Redis client retries only
    what failed before it was sent (redis-py's retry would send it again after a timeout:
    an event logged and delivered twice). The peer: a server that answers every command
    but the ones naming the key "stall"."""
    stalled: list[list[bytes]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            for command in resp_commands(data):
                if b"stall" in command:
                    stalled.append(command)
                else:
                    writer.write(b"+OK\r\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = ClusterBus(ClusterSettings(redis_url=f"redis://127.0.0.1:{port}"), Observer())
    try:
        with pytest.raises(RedisTimeout):
            await bus.redis.set("stall", "1")
        await asyncio.sleep(0.5)  # (more than the retry's backoff)
    finally:
        await bus.redis.aclose()
        server.close()
    assert len(stalled) == 1


def resp_commands(data: bytes) -> list[list[bytes]]:
    """The commands in a chunk of RESP (each an array of bulk strings)."""
    commands: list[list[bytes]] = []
    for line in data.split(b"\r\n"):
        if line.startswith(b"*"):
            commands.append([])
        elif line and not line.startswith(b"$") and commands:
            commands[-1].append(line)
    return commands
