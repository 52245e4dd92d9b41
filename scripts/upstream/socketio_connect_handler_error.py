"""A connect handler that raises (other than ConnectionRefusedError) strands the client.

AsyncServer._handle_connect() pre-registers the namespace sid, then runs the connect
handler, catching only ConnectionRefusedError. Any other exception propagates out of
the packet dispatch (python-engineio logs it as "message async handler error"): the client
gets neither CONNECT nor CONNECT_ERROR and waits, and the sid stays in the manager as
"connecting". When the client goes away, _handle_disconnect() skips the sid because it
is not connected, so the registration is never removed: one entry per failed attempt.

Twenty WebSocket clients connect while the handler raises, wait 1 s, and leave.
Exit status 1: defect present; 0: fixed.
"""

import asyncio
import logging
import sys

import socketio
import uvicorn
from websockets.asyncio.client import connect

ATTEMPTS = 20


async def serve(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


def registered(sio):
    """Namespace sids the manager still holds for "/"."""
    return len(sio.manager.rooms.get("/", {}).get(None, {}))


async def attempt(port):
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    async with connect(url, ping_interval=None, open_timeout=5) as ws:
        await asyncio.wait_for(ws.recv(), 5)  # Engine.IO OPEN
        await ws.send("40")
        try:
            return await asyncio.wait_for(ws.recv(), 1)
        except TimeoutError:
            return None


async def main():
    sio = socketio.AsyncServer(async_mode="asgi")
    logging.getLogger("engineio.server").setLevel(logging.CRITICAL)  # 20 tracebacks: not shown

    @sio.event
    async def connect(sid, environ, auth):
        raise RuntimeError("the user directory is unreachable")

    server, task, port = await serve(socketio.ASGIApp(sio))
    try:
        answers = [await attempt(port) for _ in range(ATTEMPTS)]
        await asyncio.sleep(0.5)
        print(f"{ATTEMPTS} connects while the connect handler raises RuntimeError")
        print(f"  answers to CONNECT: {sorted(set(map(str, answers)))}")
        print(f"  Engine.IO sessions left: {len(sio.eio.sockets)}; Socket.IO sids still "
              f"registered in the manager: {registered(sio)}")  # fmt: skip
        leaked = registered(sio)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    broken = leaked > 0 or any(answer is None for answer in answers)
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
