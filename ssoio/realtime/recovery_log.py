"""Connection state recovery's data: offsets, session records, logged events, and the
in-memory store of one node (``MemoryRecoveryStore``). Pure values and bounded maps; the
Redis store of a cluster is ``ssoio.cluster.recovery``.

An offset is ``"<ms>-<seq>"`` (the shape of a Redis stream id): a position in ONE
order over every room of the node (memory) or cluster (Redis), because the official
client keeps only the last offset it received, whatever the room (socket.io-client
4.8 ``Socket.emitEvent``: the last argument of an event, when it is a string).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssoio.clock import Clock

__all__ = [
    "ENDING",
    "LoggedEvent",
    "MemoryRecoveryStore",
    "Offset",
    "SessionRecord",
    "StoreUnavailable",
    "new_pid",
    "offset_after",
    "parse_offset",
    "pid_digest",
    "valid_pid",
]

# Revocations that end a session for good; a record of such a session is refused
# afterwards (``kill_matching``). A user's kick does not end the user's later sessions (they
# may connect again at once): it refuses the records of sockets that went away before it.
ENDING = frozenset({"web_session", "idp_session"})

Offset = tuple[int, int]
_OFFSET = re.compile(r"(\d{1,15})-(\d{1,9})")
_PID = re.compile(r"[A-Za-z0-9_-]{16,64}")
ZERO = "0-0"


class StoreUnavailable(Exception):
    """The recovery store cannot be reached (Redis down): connects go on, not recovered."""


def new_pid() -> str:
    """A private session id (socket.io's ``pid``): 144 random bits, never logged."""
    return secrets.token_urlsafe(18)


def valid_pid(value: object) -> bool:
    return isinstance(value, str) and _PID.fullmatch(value) is not None


def pid_digest(pid: str) -> str:
    """What stores key a session by: a reader of Redis learns no usable pid."""
    return hashlib.sha256(f"ssoio-recovery:{pid}".encode()).hexdigest()


def parse_offset(value: object) -> Offset | None:
    """``"<ms>-<seq>"`` as a comparable pair; None for anything else."""
    match = _OFFSET.fullmatch(value) if isinstance(value, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def offset_after(last: Offset, now_ms: int) -> Offset:
    """The next offset: the clock's millisecond, or the last one's next sequence number
    when the clock has not moved on (or went back)."""
    return (now_ms, 0) if now_ms > last[0] else (last[0], last[1] + 1)


def as_text(offset: Offset) -> str:
    return f"{offset[0]}-{offset[1]}"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What a recovery needs of a socket that went away (never its token)."""

    pid: str
    issuer: str
    subject: str
    namespace: str
    rooms: tuple[str, ...]
    since: str  # the log's head when the socket connected: older offsets are not its own
    web_session: str | None = None
    idp_session: str | None = None
    disconnected_at: float | None = None  # None: live on ``node``
    node: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid, "issuer": self.issuer, "subject": self.subject,
            "namespace": self.namespace, "rooms": list(self.rooms), "since": self.since,
            "web_session": self.web_session, "idp_session": self.idp_session,
            "disconnected_at": self.disconnected_at, "node": self.node,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SessionRecord:
        at = raw.get("disconnected_at")
        return cls(
            pid=str(raw["pid"]), issuer=str(raw["issuer"]), subject=str(raw["subject"]),
            namespace=str(raw["namespace"]), rooms=tuple(str(r) for r in raw["rooms"]),
            since=str(raw["since"]), web_session=_opt(raw.get("web_session")),
            idp_session=_opt(raw.get("idp_session")),
            disconnected_at=float(at) if at is not None else None, node=str(raw.get("node", "")),
        )  # fmt: skip

    def sessions(self) -> list[tuple[str, tuple[str, ...]]]:
        """The sessions it belongs to that can end for good (a browser session, an IdP
        session), as revocations name them: (kind, key)."""
        ended: list[tuple[str, tuple[str, ...]]] = []
        if self.web_session:
            ended.append(("web_session", (self.web_session,)))
        if self.idp_session:
            ended.append(("idp_session", (self.issuer, self.idp_session)))
        return ended

    def users(self) -> list[tuple[str, str]]:
        """The keys a user's kick names it by: (issuer, sub), and ("", sub) for a kick of
        that ``sub`` at every issuer."""
        return [(self.issuer, self.subject), ("", self.subject)]

    def kicked_away(self, kicks: Sequence[float | None]) -> bool:
        """Whether the socket had gone away by the time of one of these kicks of its user
        (a save of its record may land after the kick that should have killed it)."""
        at = self.disconnected_at
        return at is not None and any(kick is not None and kick >= at for kick in kicks)

    def matches(self, kind: str, key: Sequence[str]) -> bool:
        """Whether a revocation of ``kind`` (user, web_session, idp_session) covers it."""
        if kind == "user":
            return self.subject == key[1] and key[0] in ("", self.issuer)
        if kind == "web_session":
            return self.web_session == key[0]
        return kind == "idp_session" and (self.issuer, self.idp_session) == tuple(key)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One room event as delivered (before per-recipient filtering)."""

    offset: str
    room: str
    event: str
    payload: dict[str, Any]
    visible: tuple[str, ...] = ()  # the fields with a visibility rule
    namespace: str = "/"

    def as_dict(self) -> dict[str, Any]:
        return {"room": self.room, "event": self.event, "payload": self.payload,
                "visible": list(self.visible), "namespace": self.namespace}  # fmt: skip

    @classmethod
    def from_dict(cls, offset: str, raw: Mapping[str, Any]) -> LoggedEvent:
        return cls(offset, str(raw["room"]), str(raw["event"]), dict(raw["payload"]),
                   tuple(str(v) for v in raw.get("visible", ())),
                   str(raw.get("namespace", "/")))  # fmt: skip


@dataclass(slots=True)
class _Room:
    events: deque[tuple[Offset, LoggedEvent, float]] = field(default_factory=deque)
    trimmed: Offset = (0, 0)  # the newest offset dropped from this room's log


class MemoryRecoveryStore:
    """The recovery store of a single node: bounded by time (``keep_s``), per room,
    in total, and by rooms; session records expire ``keep_s`` after their disconnect."""

    def __init__(
        self, clock: Clock, keep_s: float, per_room: int, total: int, max_rooms: int
    ) -> None:
        self.clock, self.keep_s = clock, keep_s
        self.per_room, self.total, self.max_rooms = per_room, total, max_rooms
        self._rooms: OrderedDict[str, _Room] = OrderedDict()  # least recently written first
        # every kept event (time, offset, room), oldest first; dropped ones leave lazily
        self._order: deque[tuple[float, Offset, str]] = deque()
        self._dropped: set[Offset] = set()
        self._forgotten: Offset = (0, 0)  # the newest offset of rooms whose log went
        self._count = 0
        self._last: Offset = (0, 0)
        self._sessions: dict[str, SessionRecord] = {}
        self._dead: dict[str, float] = {}  # pid digest -> until when it may not be saved
        # sessions ended (logout): a record of one is never saved again, also one whose save
        # was under way when the session ended (its socket had just gone away)
        self._ended: dict[tuple[str, tuple[str, ...]], float] = {}
        self._kicks: dict[tuple[str, str], float] = {}  # a user's last kick, for keep_s

    # -- the event log ----------------------------------------------------------------------

    def announcing(self) -> bool:
        """(One node: the caller delivers what it logs.)"""
        return False

    async def append(self, entry: LoggedEvent, announce: bool = False) -> str:
        now = self.clock()
        self._last = offset_after(self._last, int(now * 1000))
        text = as_text(self._last)
        room = self._rooms.pop(entry.room, None) or _Room()
        self._rooms[entry.room] = room
        room.events.append((self._last, _with_offset(entry, text), now))
        self._order.append((now, self._last, entry.room))
        self._count += 1
        self._trim(now)
        return text

    async def head(self) -> str:
        return as_text(self._last)

    async def read(self, rooms: Sequence[str], after: Offset, limit: int) -> list[LoggedEvent]:
        """The events of ``rooms`` after ``after``, oldest first.

        :raises LookupError: some of them were dropped (a cap or the time limit).
        :raises OverflowError: more than ``limit``.
        """
        self._trim(self.clock())
        found: list[LoggedEvent] = []
        for name in rooms:
            room = self._rooms.get(name)
            if (room.trimmed if room else self._forgotten) > after:
                raise LookupError(name)
            found += [e for o, e, _ in room.events if o > after] if room else []
            if len(found) > limit:
                raise OverflowError(limit)
        return sorted(found, key=lambda event: parse_offset(event.offset) or (0, 0))

    def _trim(self, now: float) -> None:
        for room in self._rooms.values():
            while len(room.events) > self.per_room:
                self._drop(room)
        while self._count > self.total or (self._order and self._order[0][0] < now - self.keep_s):
            self._drop(self._rooms[self._order[0][2]])
        while len(self._rooms) > self.max_rooms:  # least recently written first
            _name, room = self._rooms.popitem(last=False)
            while room.events:
                self._drop(room)
            self._forgotten = max(self._forgotten, room.trimmed)

    def _drop(self, room: _Room) -> None:
        offset, _event, _at = room.events.popleft()
        room.trimmed = max(room.trimmed, offset)
        self._count -= 1
        self._dropped.add(offset)
        while self._order and self._order[0][1] in self._dropped:
            self._dropped.discard(self._order.popleft()[1])

    # -- session records --------------------------------------------------------------------

    async def save(self, record: SessionRecord) -> None:
        digest = pid_digest(record.pid)
        now = self.clock()
        if (
            self._dead.get(digest, 0) > now
            or any(self._ended.get(session, 0) > now for session in record.sessions())
            or record.kicked_away([self._kicks.get(user) for user in record.users()])
        ):
            return
        self._sessions[digest] = record
        self._expire()

    async def take(self, pid: str) -> SessionRecord | None:
        self._expire()
        return self._sessions.pop(pid_digest(pid), None)

    async def kill(self, pid: str) -> None:
        digest = pid_digest(pid)
        self._sessions.pop(digest, None)
        self._dead[digest] = self.clock() + self.keep_s

    async def kill_matching(self, kind: str, key: Sequence[str], at: float) -> int:
        if kind in ENDING:
            self._ended[(kind, tuple(key))] = self.clock() + self.keep_s
        elif kind == "user":
            self._kicks[(key[0], key[1])] = at
        doomed = [r.pid for r in self._sessions.values() if r.matches(kind, key)]
        for pid in doomed:
            await self.kill(pid)
        return len(doomed)

    async def touch(self, pids: Sequence[str]) -> None:
        """(Records of live sockets are not kept in memory: nothing to refresh.)"""

    def _expire(self) -> None:
        now = self.clock()
        for digest, record in list(self._sessions.items()):
            at = record.disconnected_at
            if at is not None and at + self.keep_s < now:
                del self._sessions[digest]
        for digest, until in list(self._dead.items()):
            if until <= now:
                del self._dead[digest]
        for session, until in list(self._ended.items()):
            if until <= now:
                del self._ended[session]
        for user, at in list(self._kicks.items()):
            if at + self.keep_s <= now:
                del self._kicks[user]

    def sizes(self) -> dict[str, int]:
        return {"events": self._count, "rooms": len(self._rooms), "sessions": len(self._sessions)}


def _with_offset(entry: LoggedEvent, offset: str) -> LoggedEvent:
    return LoggedEvent(offset, entry.room, entry.event, entry.payload, entry.visible,
                       entry.namespace)  # fmt: skip
