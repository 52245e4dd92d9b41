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


async def test_a_fan_out_encodes_once_and_sends_in_turn_without_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``FanOut``: one packet object for every recipient, handed over in room order by the
    emitting coroutine itself (python-socketio creates a task per recipient); the sender
    skipped; a failing recipient neither stops the others nor reaches the emitter."""
    manager = LocalManager()
    server = socketio.AsyncServer(async_mode="asgi", client_manager=manager)
    manager.initialize()
    sent: list[tuple[str, object, asyncio.Task[Any] | None]] = []

    async def send(eio_sid: str, pkt: object) -> None:
        sent.append((eio_sid, pkt, asyncio.current_task()))
        if eio_sid == "eio-1":
            raise ConnectionResetError

    server._send_eio_packet = send
    sids = [await manager.connect(f"eio-{i}", "/") for i in range(4)]
    for sid in sids:
        await manager.enter_room(sid, "/", "r:general")
    created = []
    monkeypatch.setattr(asyncio, "create_task", lambda *a, **k: created.append(a))
    await manager.emit("chat:message", ({"text": "hi"}, "1-0"), namespace="/",
                       room="r:general", skip_sid=sids[3])  # fmt: skip
    assert [eio for eio, _, _ in sent] == ["eio-0", "eio-1", "eio-2"]
    assert len({id(pkt) for _, pkt, _ in sent}) == 1
    assert {task for _, _, task in sent} == {asyncio.current_task()}
    assert created == []
    assert sent[0][1].encode() == '42["chat:message",{"text":"hi"},"1-0"]'  # type: ignore[attr-defined]
