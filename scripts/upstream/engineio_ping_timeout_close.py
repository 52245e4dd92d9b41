"""python-engineio drops its own CLOSE packet when it ends a session on ping timeout.

AsyncSocket.check_ping_timeout() calls close(abort=False), which sends CLOSE through
send(); send() first calls check_ping_timeout() again, which finds the ping still overdue
(the session is "closing"), and returns False: the CLOSE is never queued. Nothing wakes
the WebSocket writer either, so the WebSocket stays open until the writer's or the
reader's own wait (ping_interval + ping_timeout) runs out.

The client here never answers PING but sends a MESSAGE packet every 0.5 s (so that the
reader's own timeout, which a silent client also runs into at ping_interval +
ping_timeout, does not end the WebSocket first). ping_interval=3, ping_timeout=1.
Exit status 1: defect present; 0: fixed.
"""

import asyncio
import sys
import time

import engineio
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

PING_INTERVAL, PING_TIMEOUT = 3, 1
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


async def session(port, chatty):
    """One WebSocket session that never answers PING; what it sees, and when."""
    url = f"ws://127.0.0.1:{port}/engine.io/?EIO=4&transport=websocket"
    start = time.monotonic()
    received = []
    events.clear()
    async with connect(url, ping_interval=None, open_timeout=5) as ws:

        async def chatter():
            while chatty:
                await asyncio.sleep(0.5)
                await ws.send("4still here")

        talk = asyncio.create_task(chatter())
        try:
            while time.monotonic() - start < 15:  # bounded
                text = await asyncio.wait_for(ws.recv(), 15)
                received.append((round(time.monotonic() - start, 1), text[:1]))
        except (ConnectionClosed, TimeoutError):
            pass
        talk.cancel()
    closed_at = time.monotonic() - start
    disconnect = [(round(t - start, 1), what) for t, what in events if what.startswith("disc")]
    after = [round(t - start, 1) for t, what in events if what == "message" and disconnect
             and t - start > disconnect[0][0]]  # fmt: skip
    print(f"  client saw packets (s, type): {received}")
    print(f"  server disconnect handler: {disconnect}")
    print(f"  WebSocket closed at {closed_at:.1f} s")
    print(f"  messages dispatched after the disconnect handler ran: {len(after)}")
    got_close = any(kind == "1" for _, kind in received)
    late = bool(disconnect) and closed_at - disconnect[0][0] > 1.0
    return not got_close or late


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
        print("client sending a MESSAGE every 0.5 s, never answering PING:")
        broken = await session(port, chatty=True)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
