"""python-socketio's client managers, with an index of each sid's rooms, a fan-out without a
task per recipient and, clustered, the publish started before the local fan-out.

Its ``basic_disconnect`` walks every room of the namespace to find the leaving sid's:
with a user room per connection that makes each disconnect O(connections), and a mass
reconnect quadratic. The index makes it O(the sid's own rooms). The mixin works over
any manager (the local one, and the Redis one when clustered).

Pieces ``socketio.rooms``, ``socketio.fanout`` and ``socketio.cluster`` of
``ssoio.transport.gates``: each falls back to python-socketio's own manager when
python-socketio is outside its verified range (``manager_for``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio
from socketio import packet

from ssoio.transport.gates import Selection
from ssoio.transport.packets import messages

__all__ = [
    "ClusterManager",
    "FanOut",
    "IndexedRooms",
    "LocalManager",
    "PublishFirst",
    "manager_for",
]

log = logging.getLogger(__name__)


class IndexedRooms:
    """Mixin for a python-socketio manager: (namespace, sid) -> rooms. Replaces
    python-socketio 5.18's ``AsyncManager.basic_disconnect`` (extends the room methods)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sid_rooms: dict[tuple[str, str], set[Any]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        self._sid_rooms.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        rooms = self._sid_rooms.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._sid_rooms[(namespace, sid)]

    def basic_close_room(self, room: Any, namespace: str) -> None:
        members = list(self.rooms.get(namespace, {}).get(room, {}))  # type: ignore[attr-defined]
        super().basic_close_room(room, namespace)  # type: ignore[misc]
        for sid in members:
            rooms = self._sid_rooms.get((namespace, sid))
            if rooms is not None:
                rooms.discard(room)

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # python-socketio 5.x's basic_disconnect, minus its walk over (a copy of) every
        # room of the namespace: the index names this sid's rooms.
        for room in list(self._sid_rooms.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        callbacks: dict[str, Any] = self.callbacks  # type: ignore[attr-defined]
        callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):  # type: ignore[attr-defined]
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]


class FanOut(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio 5.18's ``AsyncManager.emit`` for the emits this node delivers
    without an ack callback (every room event): the packet encoded once, as upstream
    (``ssoio.transport.packets``), and handed to each recipient in turn, where upstream
    creates a task per recipient and waits for them all. Handing a packet over never
    waits (ssoio's Engine.IO queues, as python-engineio's, are unbounded;
    ``realtime.max_backlog_packets`` closes a client that stops reading), so the tasks
    bought nothing but their cost
    (docs/upstream/python-socketio-fan-out-task-per-recipient.md). On ssoio's server, an
    open WebSocket with nothing queued gets the frame written at once
    (``SocketServer.send_at_once``: the frame built once for all). Emits with a callback
    run upstream's code.

    A base class, not a mixin: the Redis manager's own delivery of a message from the
    cluster (``AsyncPubSubManager._handle_emit``) calls ``super().emit``, which must be
    this one (``ClusterManager``'s method resolution order puts it below the pub/sub
    manager)."""

    server: Any

    async def emit(
        self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
        callback: Any = None, to: Any = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        if callback is not None:
            await super().emit(event, data, namespace, room, skip_sid, callback, to, **kwargs)
            return
        if namespace not in self.rooms:
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        # a snapshot: a send may close a session (its backlog), which leaves its rooms
        recipients = [e for s, e in self.get_participants(namespace, to or room) if s not in skip]
        if not recipients:
            return
        pkts = messages(self.server.packet_class, packet.EVENT, namespace, [event, *args])
        send = self.server._send_eio_packet
        # ssoio's server writes to an open WebSocket at once, skipping the calls down to it
        at_once = getattr(self.server, "send_at_once", None) if len(pkts) == 1 else None
        for eio_sid in recipients:
            try:
                if at_once is not None and at_once(eio_sid, pkts[0]):
                    continue
                for pkt in pkts:
                    await send(eio_sid, pkt)
            except Exception as exc:  # one recipient's failure never stops the others
                log.error("realtime.send.failed kind=%s", type(exc).__name__)


class LocalManager(IndexedRooms, FanOut):
    """The single-node manager."""


class PublishFirst:
    """Mixin for python-socketio's Redis manager (room emits across nodes): overrides
    python-socketio 5.18's ``AsyncPubSubManager._handle_emit`` and
    ``AsyncRedisManager._publish``.

    python-socketio delivers an emit to this node's members first and publishes it for the
    other nodes after, so with thousands of members here every other node waits for this
    node's whole fan-out. Here the publish starts first (it runs until its command is
    written to Redis) and this node delivers while Redis answers."""

    host_id: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._publishing: dict[int, asyncio.Future[Any]] = {}

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("host_id") != self.host_id:  # from another node: deliver only
            await super()._handle_emit(message)  # type: ignore[misc]
            return
        publish = asyncio.ensure_future(super()._publish(message))  # type: ignore[misc]
        self._publishing[id(message)] = publish
        await asyncio.sleep(0)  # let it write to Redis
        try:
            await super()._handle_emit(message)  # type: ignore[misc]
        except BaseException:
            # python-socketio will not call _publish; the publish finishes by itself
            self._publishing.pop(id(message), None)
            raise

    async def _publish(self, data: dict[str, Any]) -> Any:
        started = self._publishing.pop(id(data), None)
        if started is not None:
            return await started
        return await super()._publish(data)  # type: ignore[misc]


class ClusterManager(IndexedRooms, PublishFirst, socketio.AsyncRedisManager, FanOut):  # type: ignore[misc]
    """python-socketio's Redis manager with the room index, publishing first, and the
    fan-out without tasks."""


def manager_for(
    selection: Selection, redis_url: str | None = None, channel: str = "socketio"
) -> Any:
    """The Socket.IO client manager for the pieces ``selection`` runs: local, or over
    Redis when ``redis_url`` is given (the cluster)."""
    rooms, fanout, cluster = (selection.uses(p) for p in _PIECES)
    mixins: tuple[type[Any], ...] = (IndexedRooms,) if rooms else ()
    if redis_url is None:
        return _made("Manager", (*mixins, FanOut if fanout else socketio.AsyncManager))()
    mixins += (PublishFirst,) if cluster else ()
    # FanOut below the Redis manager: its _handle_emit delivers through super().emit
    classes = (*mixins, socketio.AsyncRedisManager, *((FanOut,) if fanout else ()))
    return _made("RedisManager", classes)(redis_url, channel=channel)


_PIECES = ("socketio.rooms", "socketio.fanout", "socketio.cluster")


def _made(name: str, classes: tuple[type[Any], ...]) -> type[Any]:
    """The manager class made of ``classes`` (python-socketio's own when it is one)."""
    named = {c.__bases__: c for c in (LocalManager, ClusterManager)}.get(classes)
    return named or (classes[0] if len(classes) == 1 else type(name, classes, {}))
