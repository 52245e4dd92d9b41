"""python-engineio keeps a WebSocket session's last received packet until the next one.

AsyncSocket._websocket_handler() decodes each frame into the local ``pkt`` and goes back
to waiting with it still bound: the packet (its text) stays referenced until the client's
next frame. For an idle Socket.IO client the last frame is its CONNECT packet, which
carries the client's credentials (``auth``, often a bearer token); the next frame is the
PONG that answers the server's first PING, ping_interval later.

Runs python-socketio on python-engineio under uvicorn (ping_interval=3): a raw WebSocket
client connects with auth {"token": SECRET}, then answers the first PING. The server's
heap is searched for engineio Packet objects holding SECRET.
Exit status 1: defect present; 0: fixed.
"""

import asyncio
import gc
import json
import sys
import time

import socketio
import uvicorn
from engineio import packet as eio_packet
from websockets.asyncio.client import connect

PING_INTERVAL, PING_TIMEOUT = 3, 2
SECRET = "eyJhbGciOiJSUzI1NiJ9.SECRET-ACCESS-TOKEN.c2lnbmF0dXJl"  # noqa: S105 (a fake)


async def serve(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


def holders():
    """Server-side engineio packets whose data contains SECRET, and who holds them."""
    gc.collect()
    found = []
    heap = gc.get_objects()
    for obj in heap:
        if isinstance(obj, eio_packet.Packet) and SECRET in str(obj.data):
            found.append([describe(r) for r in gc.get_referrers(obj) if r is not heap])
    return found


def describe(referrer):
    code = getattr(referrer, "cr_code", None) or getattr(referrer, "f_code", None)
    return f"{type(referrer).__name__} {code.co_qualname}" if code else type(referrer).__name__


async def main():
    sio = socketio.AsyncServer(async_mode="asgi", ping_interval=PING_INTERVAL,
                               ping_timeout=PING_TIMEOUT)  # fmt: skip

    @sio.event
    async def connect_(sid, environ, auth):  # registered as "connect" below
        return auth.get("token") == SECRET

    sio.on("connect", connect_)
    server, task, port = await serve(socketio.ASGIApp(sio))
    held = []
    try:
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        async with connect(url, ping_interval=None, open_timeout=5) as ws:
            start = time.monotonic()
            await asyncio.wait_for(ws.recv(), 5)  # Engine.IO OPEN
            await ws.send("40" + json.dumps({"token": SECRET}))
            print("Socket.IO CONNECT answer:", (await asyncio.wait_for(ws.recv(), 5))[:4], "...")
            for at in (0.5, PING_INTERVAL - 0.5):
                await asyncio.sleep(at - (time.monotonic() - start))
                found = holders()
                held.append(bool(found))
                print(f"t={at:.1f} s, idle: packets holding the token: {len(found)} {found}")
            ping = await asyncio.wait_for(ws.recv(), PING_INTERVAL + 2)
            print(f"t={time.monotonic() - start:.1f} s: server sent {ping!r}, client answers '3'")
            await ws.send("3")
            await asyncio.sleep(0.3)
            found = holders()
            print(f"t={time.monotonic() - start:.1f} s: packets holding the token: {len(found)}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    broken = any(held)
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
