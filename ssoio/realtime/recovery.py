"""Connection state recovery (socket.io 4.6+'s protocol), authorised.

The official client sends the ``pid`` it got in its first CONNECT answer and the last
``offset`` it received (the last argument of room events) in the CONNECT payload of a
reconnect (socket.io-client 4.8 ``Socket._sendConnectPacket``), and sets
``socket.recovered`` when the answer carries the same ``pid`` (``Socket.onconnect``).

Unlike socket.io's own server (``SessionAwareAdapter.restoreSession``, which restores
whatever the socket had), a recovery here is a full connect first: the credential was
verified like any other, and then

* the session must be the same issuer and ``sub`` (and the same browser session when it
  had one), in the same namespace, and not be live elsewhere;
* sessions ended by a revocation (logout, kick, ``token_revoked``, issuer removed) were
  forgotten when they ended (``forget``, ``forget_matching``);
* each room is re-checked against the new principal: one no longer allowed is not
  restored (``room:revoked``) and its missed events are not replayed;
* missed events are filtered for the recipient as at delivery (``FieldVisibility``).

Any refusal leaves an ordinary, fresh connect with a new ``pid`` (``recovered`` false on
the client) and one audit line ``recovery.refused`` with its reason.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from ssoio.audit import Observer
from ssoio.clock import Clock
from ssoio.config.recovery import RecoverySettings
from ssoio.policy.visibility import FieldVisibility
from ssoio.realtime.connections import Connection, Connections
from ssoio.realtime.live import LiveConfig
from ssoio.realtime.recovery_log import (
    LoggedEvent,
    Offset,
    SessionRecord,
    StoreUnavailable,
    new_pid,
    parse_offset,
    valid_pid,
)

__all__ = ["NOT_LOGGED", "RECOVERABLE_REASONS", "Logged", "Recovery", "RecoveryStore", "Restored"]

log = logging.getLogger(__name__)

# socket.io's RECOVERABLE_DISCONNECT_REASONS, in python-engineio's words: the transport
# went away, or the node is shutting down (a drain: its clients reconnect elsewhere), not
# the client or the server on purpose ("client disconnect", "server disconnect" are final).
SHUTTING_DOWN = "server shutting down"
WRITES_IN_FLIGHT = 16
RECOVERABLE_REASONS = frozenset({"transport close", "transport error", "ping timeout",
                                 SHUTTING_DOWN})  # fmt: skip


class RecoveryStore(Protocol):
    """Where session records and the event log live (``recovery_log.MemoryRecoveryStore``,
    ``ssoio.cluster.recovery.RedisRecoveryStore``). Failures raise ``StoreUnavailable``."""

    def announcing(self) -> bool: ...  # append(announce=True) publishes to every node

    async def append(self, entry: LoggedEvent, announce: bool = False) -> str: ...

    async def head(self) -> str: ...

    async def read(
        self, rooms: list[str], after: Offset, limit: int
    ) -> list[LoggedEvent]: ...  # LookupError: a gap; OverflowError: over limit

    async def save(self, record: SessionRecord) -> None: ...

    async def take(self, pid: str) -> SessionRecord | None: ...

    async def kill(self, pid: str) -> None: ...

    async def kill_matching(
        self, kind: str, key: tuple[str, ...], at: float
    ) -> int: ...  # at: when (a kick refuses the records of sockets away by then)

    async def touch(self, pids: list[str]) -> None: ...


class LiveElsewhere(Protocol):
    async def __call__(self, record: SessionRecord) -> bool: ...


@dataclass(slots=True)
class Restored:
    """A recovery's outcome for one connect, sent right after the CONNECT answer."""

    rooms: list[str]
    revoked: list[str]
    since: str  # the session's start, kept: its old offsets stay its own
    after: Offset  # where the client stopped
    events: list[LoggedEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Logged:
    """A room event logged for recovering clients."""

    offset: str | None = None  # None: not logged (recovery off, the store down)
    # published by the store with its offset, in the log's order: every node, this one
    # included, delivers it from the cluster bus, and the caller does not
    announced: bool = False


NOT_LOGGED = Logged()


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Recovery:
    """Session records and the room event log of one node, for recovering clients."""

    def __init__(
        self, live: LiveConfig, store: RecoveryStore, clock: Clock, observe: Observer,
        node: str = "", live_elsewhere: LiveElsewhere | None = None,
        connections: Connections | None = None,
    ) -> None:  # fmt: skip
        self.live, self.store, self.clock, self.observe = live, store, clock, observe
        self.node = node
        self.connections = connections
        self._keepalive: asyncio.Task[None] | None = None
        self.live_elsewhere = live_elsewhere
        self._tasks: set[asyncio.Task[None]] = set()
        # record writes in flight: a drain closes every socket at once, and a shared
        # store's connection pool is bounded (redis-py refuses beyond it)
        self._writes = asyncio.Semaphore(WRITES_IN_FLIGHT)

    @property
    def settings(self) -> RecoverySettings:
        return self.live.settings.recovery

    # -- connect --------------------------------------------------------------------------

    async def restore(self, auth: object, connection: Connection) -> Restored | None:
        """The session ``auth`` names (``pid``, ``offset``), for ``connection`` (already
        authenticated): None when it names none or may not be recovered."""
        if not isinstance(auth, dict) or "pid" not in auth:
            return None
        self.observe("recovery.attempted", sub=connection.principal.subject)
        try:
            restored = await self._restore(auth["pid"], auth.get("offset"), connection)
        except _Refused as refused:
            principal = connection.principal
            self.observe("recovery.refused", reason=refused.reason, issuer=principal.issuer,
                         sub=principal.subject)  # fmt: skip
            return None
        connection.pid, connection.since = auth["pid"], restored.since
        return restored

    async def missed(self, restored: Restored, connection: Connection) -> bool:
        """Read what the session missed in its restored rooms (``restored.events``),
        once ``connection`` is in them: an event logged from now on reaches it live (held
        by the transport until the replay is out, and dropped there when replayed).
        False: not recovered after all (a gap, too many, the store down)."""
        principal, limit = connection.principal, self.settings.max_replay
        try:
            events = await self._guarded(self.store.read(restored.rooms, restored.after, limit))
        except _Refused as refused:
            self.observe("recovery.refused", reason=refused.reason, issuer=principal.issuer,
                         sub=principal.subject)  # fmt: skip
            return False
        except LookupError:
            return self._refused(connection, "gap_trimmed")
        except OverflowError:
            return self._refused(connection, "too_many_missed")
        # (python-socketio's rooms are per namespace: so is what it missed)
        namespace = connection.namespace
        restored.events = [e for e in events if e.room in restored.rooms
                           and e.namespace == namespace]  # fmt: skip
        self.observe("recovery.succeeded", issuer=principal.issuer, sub=principal.subject,
                     rooms=len(restored.rooms), revoked=len(restored.revoked),
                     replayed=len(restored.events))  # fmt: skip
        return True

    def _refused(self, connection: Connection, reason: str) -> bool:
        principal = connection.principal
        self.observe("recovery.refused", reason=reason, issuer=principal.issuer,
                     sub=principal.subject)  # fmt: skip
        return False

    async def _restore(self, pid: object, offset: object, connection: Connection) -> Restored:
        if not valid_pid(pid):
            raise _Refused("pid_invalid")
        assert isinstance(pid, str)
        record = await self._guarded(self.store.take(pid))
        if record is None:
            raise _Refused("unknown_session")  # never existed, expired, revoked or taken
        await self._check(record, connection)
        after = await self._position(record, offset)
        allowed, revoked = self._rooms(record, connection)
        return Restored(allowed, revoked, record.since, after)

    async def _check(self, record: SessionRecord, connection: Connection) -> None:
        principal = connection.principal
        if (record.issuer, record.subject) != (principal.issuer, principal.subject):
            raise _Refused("identity_mismatch")
        if record.web_session is not None and record.web_session != connection.web_session:
            raise _Refused("browser_session_mismatch")
        if record.namespace != connection.namespace:
            raise _Refused("namespace_mismatch")
        if record.disconnected_at is None:
            # a live record: its node was stopped without a disconnect (SIGKILL), or the
            # socket is still connected (the pid is being reused): ask
            if self.live_elsewhere is None or await self.live_elsewhere(record):
                await self._guarded(self.store.save(record))  # it stays the live one's
                raise _Refused("still_connected")
        elif record.disconnected_at + self.settings.max_disconnection_s < self.clock():
            raise _Refused("expired")

    async def _position(self, record: SessionRecord, offset: object) -> Offset:
        """Where the client stopped: its ``offset``, or the session's start when it
        received no room event at all (the client then sends none)."""
        since = parse_offset(record.since) or (0, 0)
        if offset is None:
            return since
        parsed = parse_offset(offset)
        head = parse_offset(await self._guarded(self.store.head())) or (0, 0)
        if parsed is None or not since <= parsed <= head:
            raise _Refused("offset_invalid")  # not a position of this session
        return parsed

    def _rooms(self, record: SessionRecord, connection: Connection) -> tuple[list[str], list[str]]:
        policy = self.live.policy
        auto = set(policy.auto_join(connection.principal))
        allowed, revoked = [], []
        for room in record.rooms:
            if room in auto or policy.room(connection.principal, room, "join"):
                allowed.append(room)
            else:
                revoked.append(room)
        return allowed, revoked

    async def _guarded(self, call: Any) -> Any:
        try:
            return await call
        except StoreUnavailable:
            raise _Refused("store_unavailable") from None

    # -- the live socket ------------------------------------------------------------------

    async def begin(self, connection: Connection) -> None:
        """A fresh session: a new pid, and the log's head before it joins any room (so
        every offset it receives is at or after it)."""
        connection.pid = new_pid()
        try:
            connection.since = await self.store.head()
        except StoreUnavailable:
            connection.since = ""  # not recoverable: where it began is unknown

    async def opened(self, connection: Connection) -> None:
        """A connection is set up; in a cluster its live record is written (so it can
        recover on another node after this one was killed)."""
        if self.live_elsewhere is not None and connection.since:
            await self._save(connection, None)
            connection.persisted = True
            if self._keepalive is None and self.connections is not None:
                self._keepalive = asyncio.create_task(self._refresh_live(self.connections))

    async def _refresh_live(self, connections: Connections) -> None:
        """Keep the records of this node's live sockets (a cluster's): they expire a
        while after this node stops refreshing them (killed), not before."""
        period = self.settings.max_disconnection_s / 3
        while True:
            await asyncio.sleep(period)
            pids = [c.pid for c in connections if c.pid and c.recoverable]
            try:
                await self.store.touch(pids)
            except StoreUnavailable:
                log.warning("recovery.store.unavailable action=touch")

    def rooms_changed(self, connection: Connection) -> None:
        """(A cluster's live record follows the rooms once the connection is set up.)"""
        if self.live_elsewhere is not None and connection.persisted and connection.recoverable:
            self._spawn(self._save(connection, None))

    def closed(self, connection: Connection, reason: str, rooms: tuple[str, ...]) -> None:
        """A connection ended (in ``rooms``): recoverable for a while, or forgotten."""
        if connection.pid is None:
            return
        if connection.recoverable and reason in RECOVERABLE_REASONS and connection.since:
            self._spawn(self._save(connection, self.clock(), rooms))
        else:
            self._spawn(self._kill(connection.pid))

    async def forget(self, connection: Connection) -> None:
        """A revoked connection's session never recovers."""
        connection.recoverable = False
        if connection.pid is not None:
            await self._kill(connection.pid)

    async def forget_matching(self, kind: str, key: tuple[str, ...]) -> None:
        """Sessions (also those away now) of a revoked user or session never recover."""
        try:
            await self.store.kill_matching(kind, key, self.clock())
        except StoreUnavailable:
            log.warning("recovery.store.unavailable action=forget kind=%s", kind)

    async def log_event(self, entry: LoggedEvent) -> Logged:
        """Log a room event before it is delivered. Clustered, the store publishes it in
        the same step, so every node delivers the log's events in the log's order (a
        client's last offset then covers everything before it). The store down: not
        logged, delivered by the caller without an offset, so no client skips past it."""
        announce = self.store.announcing()
        try:
            return Logged(await self.store.append(entry, announce), announce)
        except StoreUnavailable:
            return NOT_LOGGED

    async def _save(
        self, connection: Connection, disconnected_at: float | None,
        rooms: tuple[str, ...] | None = None,
    ) -> None:  # fmt: skip
        principal = connection.principal
        rooms = tuple(sorted(connection.rooms)) if rooms is None else rooms
        record = SessionRecord(
            pid=str(connection.pid), issuer=principal.issuer, subject=principal.subject,
            namespace=connection.namespace, rooms=rooms,
            since=connection.since, web_session=connection.web_session,
            idp_session=principal.session_id, disconnected_at=disconnected_at, node=self.node,
        )  # fmt: skip
        try:
            async with self._writes:
                await self.store.save(record)
        except StoreUnavailable as exc:
            log.warning("recovery.store.unavailable action=save kind=%s",
                        type(exc.__cause__).__name__)  # fmt: skip

    async def _kill(self, pid: str) -> None:
        try:
            async with self._writes:
                await self.store.kill(pid)
        except StoreUnavailable:
            log.warning("recovery.store.unavailable action=kill")

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for pending record writes (shutdown)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)


def view_of(
    event: LoggedEvent, recipient: Connection, known: FieldVisibility | None
) -> dict[str, Any]:
    """A logged event as ``recipient`` may see it: the event's visibility in the
    configuration in force, or, for one it does not know, every listed field hidden
    (fail closed, as the cluster bus does)."""
    visibility = known or FieldVisibility.compile(dict.fromkeys(event.visible, "nobody"))
    hidden = visibility.hidden_from(recipient.principal) if visibility.rules else frozenset()
    return {k: v for k, v in event.payload.items() if k not in hidden}


def visible_fields(visibility: FieldVisibility | None) -> tuple[str, ...]:
    return tuple(name for name, _ in visibility.rules) if visibility else ()
