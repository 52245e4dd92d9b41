"""A client's Engine.IO CLOSE over a WebSocket ends the session, not the WebSocket.

AsyncSocket.receive() handles CLOSE with close(abort=True): the session ends (the
disconnect handler runs, the sid is forgotten) but nothing wakes the writer and the
reader goes back to waiting for the next frame. The WebSocket stays open, no longer in
the server's session table, until the reader's wait (ping_interval + ping_timeout since
the client's last frame) or the writer's (the same, since the last packet it sent) runs
out: up to 45 s with the default settings. Frames the client sends meanwhile are still
dispatched to the "message" handler.

ping_interval=1, ping_timeout=1 (the reader waits 2 s). Exit status 1: defect present.
"""

import asyncio
import sys
import time

import engineio
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

PING_INTERVAL, PING_TIMEOUT = 1, 1
events = []


async def serve(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


async def close_then(port, eio, keepalive, watch=8.0):
    """Send CLOSE ("1"), then (optionally) a MESSAGE every 1.5 s; how long is the
    WebSocket left open?"""
    url = f"ws://127.0.0.1:{port}/engine.io/?EIO=4&transport=websocket"
    events.clear()
    async with connect(url, ping_interval=None, open_timeout=5) as ws:
        await asyncio.wait_for(ws.recv(), 5)  # OPEN
        await ws.send("1")
        sent = time.monotonic()
        open_for = None
        while time.monotonic() - sent < watch:  # bounded
            try:
                await asyncio.wait_for(ws.recv(), 1.5)
            except TimeoutError:
                if keepalive:
                    await ws.send("4still here")
            except ConnectionClosed:
                open_for = time.monotonic() - sent
                break
    after = sum(1 for _, what in events if what == "message")
    disconnects = [what for _, what in events if what != "message"]
    print(f"  server disconnect handler: {disconnects}; sessions left: {len(eio.sockets)}")
    if open_for is None:
        print(f"  WebSocket still open {watch:.0f} s after the client's CLOSE")
    else:
        print(f"  WebSocket closed by the server {open_for:.1f} s after the client's CLOSE")
    print(f"  messages dispatched after the session ended: {after}")
    return open_for is None or open_for > 1.0


async def main():
    eio = engineio.AsyncServer(async_mode="asgi", ping_interval=PING_INTERVAL,
                               ping_timeout=PING_TIMEOUT)  # fmt: skip

    @eio.on("disconnect")
    def disconnect(sid, reason):
        events.append((time.monotonic(), f"disconnect ({reason})"))

    @eio.on("message")
    def message(sid, data):
        events.append((time.monotonic(), "message"))

    server, task, port = await serve(engineio.ASGIApp(eio))
    try:
        print(f"ping_interval={PING_INTERVAL} s, ping_timeout={PING_TIMEOUT} s")
        print("client sends CLOSE, then waits:")
        waits = await close_then(port, eio, keepalive=False)
        print("client sends CLOSE, then a MESSAGE every 1.5 s:")
        keeps = await close_then(port, eio, keepalive=True)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    broken = waits or keeps
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
