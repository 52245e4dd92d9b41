"""Connection state recovery's pure pieces: offsets, pids, session records, and the
bounded in-memory store of one node (fake clock)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ssoio.realtime.recovery_log import (
    LoggedEvent,
    MemoryRecoveryStore,
    SessionRecord,
    new_pid,
    offset_after,
    parse_offset,
    pid_digest,
    valid_pid,
)
from ssoio.transport.server import _packet_offset


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def store(clock: FakeClock, *, keep_s: float = 60, per_room: int = 5, total: int = 8,
          max_rooms: int = 3) -> MemoryRecoveryStore:  # fmt: skip
    return MemoryRecoveryStore(clock, keep_s, per_room, total, max_rooms)


def event(room: str, text: str = "x") -> LoggedEvent:
    return LoggedEvent("", room, "chat:message", {"room": room, "text": text})


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("1733-0", (1733, 0)), ("0-0", (0, 0)), ("1-999999999", (1, 999999999)),
     ("x", None), ("1-", None), ("-1", None), ("1-2-3", None), (" 1-2", None),
     ("1" * 16 + "-0", None), (12, None), (None, None)],
)  # fmt: skip
def test_offsets_parse_strictly(text: object, parsed: tuple[int, int] | None) -> None:
    assert parse_offset(text) == parsed


@pytest.mark.parametrize(
    ("last", "now_ms", "next_"), [((5, 3), 6, (6, 0)), ((5, 3), 5, (5, 4)), ((5, 3), 4, (5, 4))]
)
def test_offsets_only_go_forward_even_when_the_clock_goes_back(
    last: tuple[int, int], now_ms: int, next_: tuple[int, int]
) -> None:
    assert offset_after(last, now_ms) == next_


def test_pids_are_random_and_checked_and_stored_by_digest() -> None:
    pid = new_pid()
    assert valid_pid(pid)
    assert pid != new_pid()
    assert not valid_pid("short")
    assert not valid_pid("x" * 65)
    assert not valid_pid("a b" * 8)
    assert pid not in pid_digest(pid)
    assert len(pid_digest(pid)) == 64


def test_a_session_record_round_trips_and_matches_its_revocations() -> None:
    record = SessionRecord("p" * 24, "primary", "alice", "/", ("a", "b"), "5-0",
                           web_session="w1", idp_session="s1", disconnected_at=3.0)  # fmt: skip
    assert SessionRecord.from_dict(record.as_dict()) == record
    assert record.matches("user", ("primary", "alice"))
    assert record.matches("user", ("", "alice"))
    assert not record.matches("user", ("other", "alice"))
    assert record.matches("web_session", ("w1",))
    assert not record.matches("web_session", ("w2",))
    assert record.matches("idp_session", ("primary", "s1"))
    assert not record.matches("idp_session", ("primary", "s2"))


async def test_events_are_read_after_an_offset_in_one_order_over_rooms() -> None:
    clock = FakeClock()
    memory = store(clock)
    offsets = [await memory.append(event("a" if n % 2 else "b", str(n))) for n in range(6)]
    assert len(set(offsets)) == 6
    read = await memory.read(["a", "b"], parse_offset(offsets[1]) or (0, 0), 100)
    assert [e.payload["text"] for e in read] == ["2", "3", "4", "5"]
    assert [e.offset for e in read] == offsets[2:]
    assert [e.payload["text"] for e in await memory.read(["a"], (0, 0), 100)] == ["1", "3", "5"]


async def test_a_gap_trimmed_by_the_room_cap_is_a_gap_not_an_empty_read() -> None:
    memory = store(FakeClock(), per_room=2)
    first = await memory.append(event("a", "0"))
    for n in range(1, 4):
        await memory.append(event("a", str(n)))
    with pytest.raises(LookupError):
        await memory.read(["a"], parse_offset(first) or (0, 0), 100)
    assert await memory.read(["a"], parse_offset(await memory.head()) or (0, 0), 100) == []


async def test_total_and_room_caps_and_time_bound_the_memory() -> None:
    clock = FakeClock()
    memory = store(clock, per_room=5, total=8, max_rooms=3)
    for n in range(1000):
        await memory.append(event(f"room{n % 7}", str(n)))
        clock.now += 0.001
    sizes = memory.sizes()
    assert sizes["events"] <= 8
    assert sizes["rooms"] <= 3
    clock.now += 61  # past keep_s: everything goes
    await memory.append(event("late"))
    assert memory.sizes()["events"] == 1
    with pytest.raises(LookupError):  # a room whose log went is a gap, not an empty room
        await memory.read(["room0"], (0, 0), 100)


async def test_too_many_missed_events_overflow() -> None:
    memory = store(FakeClock(), per_room=50, total=100)
    for n in range(10):
        await memory.append(event("a", str(n)))
    with pytest.raises(OverflowError):
        await memory.read(["a"], (0, 0), 5)


async def test_records_are_taken_once_expire_and_stay_dead_once_killed() -> None:
    clock = FakeClock()
    memory = store(clock, keep_s=60)
    record = SessionRecord(new_pid(), "primary", "alice", "/", ("a",), "0-0",
                           disconnected_at=clock.now)  # fmt: skip
    await memory.save(record)
    assert await memory.take(record.pid) == record
    assert await memory.take(record.pid) is None  # once
    await memory.save(record)
    clock.now += 61
    assert await memory.take(record.pid) is None  # expired
    record = replace(record, disconnected_at=clock.now)
    await memory.save(record)
    assert await memory.kill_matching("user", ("primary", "alice"), clock.now) == 1
    await memory.save(record)  # a late save of a killed session does not revive it
    assert await memory.take(record.pid) is None


@pytest.mark.parametrize(
    ("encoded", "offset"),
    [('2["chat:message",{"text":"a"},"17-3"]', "17-3"),
     ('2/chat,["e",{"a":1},"1733000000000-0"]', "1733000000000-0"),
     ('2["chat:message",{"text":"17-3"}]', None), ('3["x","1-0"]', None),
     ('0{"sid":"x"}', None), (b"2", None)],
)  # fmt: skip
def test_the_offset_of_an_encoded_event_is_its_last_string_argument(
    encoded: object, offset: str | None
) -> None:
    assert _packet_offset(encoded) == offset


@pytest.mark.parametrize(
    ("kind", "key"), [("web_session", ("w1",)), ("idp_session", ("primary", "s1"))]
)
async def test_a_save_under_way_when_its_session_ended_is_refused(
    kind: str, key: tuple[str, ...]
) -> None:
    """A socket that had just gone away when its browser or IdP session ended (logout):
    its record's save, spawned before the logout, lands after it and finds nothing to
    kill; the session's end mark refuses it. Other sessions are untouched; the mark
    expires."""
    clock = FakeClock()
    memory = store(clock, keep_s=60)
    assert await memory.kill_matching(kind, key, clock.now) == 0  # the logout, first
    late = SessionRecord(new_pid(), "primary", "alice", "/", ("a",), "0-0",
                         web_session="w1", idp_session="s1", disconnected_at=clock.now)  # fmt: skip
    await memory.save(late)
    assert await memory.take(late.pid) is None
    other = replace(late, pid=new_pid(), web_session="w2", idp_session="s2")
    await memory.save(other)
    assert await memory.take(other.pid) == other
    clock.now += 61
    after = replace(late, pid=new_pid(), disconnected_at=clock.now)
    await memory.save(after)
    assert await memory.take(after.pid) == after


@pytest.mark.parametrize("issuer", ["primary", ""])
async def test_a_save_under_way_when_its_user_was_kicked_is_refused(issuer: str) -> None:
    """A socket that had gone away by the time of its user's kick (of that issuer, or of
    every issuer): its record's save, spawned before the kick, lands after it and is
    refused. The user's sockets that go away after the kick (they connected again) are
    recoverable; another user, or the same ``sub`` at another issuer, is untouched."""
    clock = FakeClock()
    memory = store(clock, keep_s=60)
    late = SessionRecord(new_pid(), "primary", "alice", "/", ("a",), "0-0",
                         disconnected_at=clock.now)  # fmt: skip
    clock.now += 0.001
    assert await memory.kill_matching("user", (issuer, "alice"), clock.now) == 0
    await memory.save(late)
    assert await memory.take(late.pid) is None
    untouched = [replace(late, pid=new_pid(), subject="bob")]
    if issuer:
        untouched.append(replace(late, pid=new_pid(), issuer="partner"))
    clock.now += 0.001
    untouched.append(replace(late, pid=new_pid(), disconnected_at=clock.now))  # went after
    for record in untouched:
        await memory.save(record)
        assert await memory.take(record.pid) == record
