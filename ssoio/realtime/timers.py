"""Lifetime timers: the node's one timer loop over ``lifetime.Scheduler``, acting on what
comes due: the ``auth:expiring`` warning, the ``token_expired`` revocation, the
``logged_out`` revocation when the browser session a connection belongs to reaches its
end, and the close of an Engine.IO session that did not authenticate in time."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ssoio.audit import Observer
from ssoio.clock import Clock
from ssoio.realtime.connections import Connection, Connections
from ssoio.realtime.lifetime import Due, Kind, Scheduler
from ssoio.realtime.live import LiveConfig
from ssoio.realtime.pending import PendingSessions
from ssoio.realtime.revocation import Revocation
from ssoio.realtime.seams import Transport

__all__ = ["Timers"]

log = logging.getLogger(__name__)


class Timers:
    """Every deadline of this node, and the task that keeps them."""

    def __init__(
        self, live: LiveConfig, clock: Clock, connections: Connections,
        pending: PendingSessions, transport: Transport, revocation: Revocation,
        observe: Observer,
    ) -> None:  # fmt: skip
        self.live = live
        self.clock = clock
        self.connections = connections
        self.pending = pending
        self.transport = transport
        self.revocation = revocation
        self.observe = observe
        self.scheduler = Scheduler()
        self.task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        """Start the timer loop (idempotent; also called lazily on first connect)."""
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._loop(), name="ssoio-timers")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    # -- scheduling -----------------------------------------------------------------------

    def unauthenticated(self, eio_sid: str) -> None:
        """Close ``eio_sid`` unless it authenticates within the timeout."""
        deadline = self.clock() + self.live.settings.realtime.unauthenticated_timeout_s
        self._schedule(deadline, "unauthenticated", eio_sid)

    def expiry(self, connection: Connection) -> None:
        """Warn before the connection's token expires, revoke when it has."""
        # A token that lives less than expiry_warning_s is warned about at once (the timer
        # loop runs after the CONNECT answer is queued): the client learns its expires_in
        # and may refresh in time, instead of being cut off without notice.
        warn_at = connection.expires_at - self.live.settings.realtime.expiry_warning_s
        self._schedule(max(warn_at, self.clock()), "warn", connection.sid, connection.generation)
        expire_at = connection.expires_at + connection.leeway_s
        self._schedule(expire_at, "expire", connection.sid, connection.generation)
        if connection.session_ends_at < expire_at:
            self._schedule(
                connection.session_ends_at, "session_end", connection.sid, connection.generation
            )

    def _schedule(self, when: float, kind: Kind, key: str, generation: int = 0) -> None:
        earliest = self.scheduler.next_deadline()
        self.scheduler.add(when, kind, key, generation)
        if earliest is None or when < earliest:
            self._wake.set()

    # -- firing ---------------------------------------------------------------------------

    async def tick(self) -> None:
        """Act on everything due now (the timer loop calls this; tests may too)."""
        for due in self.scheduler.pop_due(self.clock()):
            try:
                await self._fire(due)
            except Exception as exc:  # the rest of the batch is popped already: go on
                log.error("timers.failed kind=%s", type(exc).__name__)
        if len(self.scheduler) > 2 * (2 * len(self.connections) + len(self.pending)) + 1024:
            self.scheduler.compact(self.live_entry)

    def live_entry(self, due: Due) -> bool:
        """Whether ``due`` still concerns a live session or connection (generation)."""
        if due.kind == "unauthenticated":
            return due.key in self.pending
        connection = self.connections.get(due.key)
        return connection is not None and connection.generation == due.generation

    async def _fire(self, due: Due) -> None:
        if due.kind == "unauthenticated":
            if self.pending.remove(due.key):
                self.observe("auth.session.timeout")
                await self.transport.close_session(due.key)
            return
        connection = self.connections.get(due.key)
        if connection is None or connection.generation != due.generation:
            return
        if due.kind == "warn":
            notice = {"expires_in": max(0, round(connection.expires_at - self.clock()))}
            await self.transport.emit(
                "auth:expiring", notice, to=connection.sid, namespace=connection.namespace
            )
        elif due.kind == "session_end":
            await self.revocation.revoke(connection, "logged_out")
        else:
            await self.revocation.revoke(connection, "token_expired")

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a timer must never die silently; log one line, go on
                log.error("timers.failed", exc_info=False)
            self.scheduler.drop_stale(self.live_entry)
            deadline = self.scheduler.next_deadline()
            delay = 1.0 if deadline is None else min(1.0, max(0.0, deadline - self.clock()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
