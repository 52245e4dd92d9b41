"""The room index under python-socketio's manager: disconnects leave exactly their rooms."""

from __future__ import annotations

import socketio

from ssoio.realtime.manager import LocalManager


async def test_disconnect_leaves_its_rooms_and_nothing_else() -> None:
    manager = LocalManager()
    socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    manager.initialize()
    sids = [await manager.connect(f"eio-{i}", "/") for i in range(3)]
    for sid in sids:
        await manager.enter_room(sid, "/", "r:tenant:acme")
    await manager.enter_room(sids[0], "/", "r:staff")
    await manager.disconnect(sids[0], "/")
    assert set(manager.get_participants("/", "r:tenant:acme")) == {
        (sid, f"eio-{i}") for i, sid in enumerate(sids) if i
    }
    assert "r:staff" not in manager.rooms["/"]
    assert sids[0] not in manager.rooms["/"]  # its own sid room went too
    assert ("/", sids[0]) not in manager._sid_rooms
    for sid in sids[1:]:
        await manager.disconnect(sid, "/")
    assert manager._sid_rooms == {}
    assert manager.rooms.get("/", {}) == {}
