"""python-socketio's client manager, with an index of each sid's rooms.

Its ``basic_disconnect`` walks every room of the namespace to find the leaving sid's:
with a user room per connection that makes each disconnect O(connections), and a mass
reconnect quadratic. The index makes it O(the sid's own rooms). The mixin works over
any manager (the local one, and the Redis one when clustered).
"""

from __future__ import annotations

from typing import Any

import socketio

__all__ = ["IndexedRooms", "LocalManager"]


class IndexedRooms:
    """Mixin for a python-socketio manager: (namespace, sid) -> rooms."""

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
