"""The lighter Engine.IO parts: the queue and flag behave as asyncio's do where used."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engineio import packet

from ssoio.transport.engine import FIRST_MESSAGE, EngineServer, EngineSocket
from ssoio.transport.queues import Flag, PacketQueue


async def test_the_queue_is_first_in_first_out() -> None:
    queue: PacketQueue[int] = PacketQueue()
    for n in range(3):
        await queue.put(n)
    assert queue.qsize() == 3
    assert [await queue.get(), queue.get_nowait(), await queue.get()] == [0, 1, 2]
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_getter_waits_for_the_next_item() -> None:
    queue: PacketQueue[str] = PacketQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait("packet")
    assert await asyncio.wait_for(getter, 1) == "packet"


async def test_getters_are_served_in_order() -> None:
    queue: PacketQueue[int] = PacketQueue()
    first, second = asyncio.create_task(queue.get()), asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert list(await asyncio.wait_for(asyncio.gather(first, second), 1)) == [1, 2]


async def test_a_woken_getter_that_is_cancelled_passes_the_item_on() -> None:
    """asyncio.Queue's guarantee: an item never stays queued while a getter waits."""
    queue: PacketQueue[str] = PacketQueue()
    first, second = asyncio.create_task(queue.get()), asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")  # wakes the first getter ...
    first.cancel()  # ... which is cancelled before it runs
    assert await asyncio.wait_for(second, 1) == "only"
    assert first.cancelled()


async def test_a_timed_out_getter_leaves_nothing_behind() -> None:
    queue: PacketQueue[int] = PacketQueue()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await queue.get()
    queue.put_nowait(7)
    assert await asyncio.wait_for(queue.get(), 1) == 7


async def test_join_waits_for_every_item_to_be_done() -> None:
    queue: PacketQueue[int] = PacketQueue()
    await asyncio.wait_for(queue.join(), 1)  # nothing put: returns at once
    queue.put_nowait(1)
    queue.put_nowait(2)
    joiner = asyncio.create_task(queue.join())
    await queue.get()
    queue.task_done()
    await asyncio.sleep(0)
    assert not joiner.done()
    await queue.get()
    queue.task_done()
    await asyncio.wait_for(joiner, 1)
    with pytest.raises(ValueError, match="too many times"):
        queue.task_done()


async def test_the_flag_wakes_its_waiters_when_set() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    await asyncio.wait_for(flag.wait(), 1)  # set: returns at once
    flag.clear()
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert flag._waiters == []  # a cancelled waiter does not linger


@pytest.mark.parametrize("offered", [True, False], ids=["offered", "not offered"])
async def test_a_new_websocket_session_sends_open_with_the_handshake(offered: bool) -> None:
    """FIRST_MESSAGE: the OPEN packet rides on the accept when the server offers it (ssoio's
    uvicorn protocol writes both at once), else it is the first message sent."""
    server = EngineServer(async_mode="asgi")
    session = EngineSocket(server, "sid1")
    session.queue.put_nowait(packet.Packet(packet.OPEN, {"sid": "sid1"}))
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"type": "websocket.disconnect", "code": 1000}

    extensions: dict[str, Any] = {FIRST_MESSAGE: {}} if offered else {}
    environ = {"asgi.scope": {"extensions": extensions}, "asgi.send": send,
               "asgi.receive": receive}  # fmt: skip
    await asyncio.wait_for(session._upgrade_websocket(environ), 5)
    accept, *rest = sent
    assert accept["type"] == "websocket.accept"
    texts = [message.get("text") for message in rest if message["type"] == "websocket.send"]
    if offered:
        assert accept[FIRST_MESSAGE] == '0{"sid":"sid1"}'
        assert '0{"sid":"sid1"}' not in texts  # sent once
    else:
        assert FIRST_MESSAGE not in accept
        assert texts[0] == '0{"sid":"sid1"}'
