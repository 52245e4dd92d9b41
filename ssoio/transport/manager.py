"""python-socketio's client managers, with an index of each sid's rooms and, clustered, the
publish started before the local fan-out.

Its ``basic_disconnect`` walks every room of the namespace to find the leaving sid's:
with a user room per connection that makes each disconnect O(connections), and a mass
reconnect quadratic. The index makes it O(the sid's own rooms). The mixin works over
any manager (the local one, and the Redis one when clustered).

Pieces ``socketio.rooms`` and ``socketio.cluster`` of ``ssoio.transport.gates``: each
falls back to python-socketio's own manager when python-socketio is outside its
verified range (``manager_for``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from ssoio.transport.gates import Selection

__all__ = ["ClusterManager", "IndexedRooms", "LocalManager", "PublishFirst", "manager_for"]


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


class LocalManager(IndexedRooms, socketio.AsyncManager):  # type: ignore[misc]
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


class ClusterManager(IndexedRooms, PublishFirst, socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis manager with the room index, publishing first."""


def manager_for(
    selection: Selection, redis_url: str | None = None, channel: str = "socketio"
) -> Any:
    """The Socket.IO client manager for the pieces ``selection`` runs: local, or over
    Redis when ``redis_url`` is given (the cluster)."""
    rooms = selection.uses("socketio.rooms")
    if redis_url is None:
        return LocalManager() if rooms else socketio.AsyncManager()
    mixins: list[type[Any]] = [IndexedRooms] if rooms else []
    if selection.uses("socketio.cluster"):
        mixins.append(PublishFirst)
    if len(mixins) == 2:
        return ClusterManager(redis_url, channel=channel)
    base: type[Any] = socketio.AsyncRedisManager
    made = type("RedisManager", (*mixins, base), {}) if mixins else base
    return made(redis_url, channel=channel)
