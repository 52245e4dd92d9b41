"""The room index under python-socketio's manager: disconnects leave exactly their rooms;
the cluster manager publishes before it delivers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from ssoio.transport.manager import ClusterManager, LocalManager


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


async def test_a_cluster_emit_is_published_before_this_nodes_fan_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """python-socketio publishes after delivering to every member on this node: with
    thousands of them, every other node would wait for the whole local fan-out."""
    order: list[str] = []

    async def publish(_manager: object, data: dict[str, Any]) -> int:
        order.append(f"published {data['event']}")
        await asyncio.sleep(0)
        return 1

    monkeypatch.setattr(socketio.AsyncRedisManager, "_publish", publish)
    manager = ClusterManager("redis://127.0.0.1:1", channel="test")  # never connected
    server = socketio.AsyncServer(async_mode="asgi", client_manager=manager)

    async def send(eio_sid: str, _packet: object) -> None:
        order.append(f"delivered to {eio_sid}")

    server._send_eio_packet = send
    sids = [await manager.connect(f"eio-{i}", "/") for i in range(2)]
    for sid in sids:
        await manager.enter_room(sid, "/", "r:tenant:acme")
    await manager.emit("chat:message", {"n": 1}, room="r:tenant:acme", namespace="/")
    assert order == ["published chat:message", "delivered to eio-0", "delivered to eio-1"]
    order.clear()
    # a message another node published is delivered here, never published again
    await manager._handle_emit({"method": "emit", "event": "memo", "data": [{}],
                                "namespace": "/", "room": "r:tenant:acme",
                                "host_id": "another-node"})  # fmt: skip
    assert order == ["delivered to eio-0", "delivered to eio-1"]
    assert manager._publishing == {}
