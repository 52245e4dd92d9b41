"""A connected client can run the server's connect/disconnect handlers with its own args.

python-socketio dispatches a client EVENT by name through _trigger_event(), the same path
that runs the application's "connect" and "disconnect" handlers. A client that is
connected (authenticated) can send ``42["connect", <environ>, <auth>]`` or
``42["disconnect", <reason>]``: the application's handler runs again with client-chosen
arguments while the client stays connected, and with an ack id the client gets the
handler's return value (an oracle for the connect handler's decision on any ``auth``).

Exit status 1: defect present; 0: fixed.
"""

import asyncio
import json
import sys

import socketio
import uvicorn
from websockets.asyncio.client import connect as ws_connect

calls = []


async def serve(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


async def main():
    sio = socketio.AsyncServer(async_mode="asgi")

    @sio.event
    async def connect(sid, environ, auth):
        calls.append(("connect", type(environ).__name__, environ.get("REMOTE_USER"), auth))
        return auth == {"token": "good"}

    @sio.event
    async def disconnect(sid, reason):
        calls.append(("disconnect", reason))

    server, task, port = await serve(socketio.ASGIApp(sio))
    try:
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        async with ws_connect(url, ping_interval=None, open_timeout=5) as ws:
            await asyncio.wait_for(ws.recv(), 5)  # Engine.IO OPEN
            await ws.send("40" + json.dumps({"token": "good"}))
            print("CONNECT ->", (await asyncio.wait_for(ws.recv(), 5))[:3], "(connected)")
            forged = ["connect", {"REMOTE_USER": "admin"}, {"token": "guess"}]
            await ws.send("421" + json.dumps(forged))
            try:
                answer = await asyncio.wait_for(ws.recv(), 1)
            except TimeoutError:
                answer = "(no answer within 1 s)"
            print(f"sent 421{json.dumps(forged)} -> {answer}")
            await ws.send("42" + json.dumps(["disconnect", "made-up reason"]))
            await asyncio.sleep(0.3)
            sid = next(iter(sio.manager.get_participants("/", None)), (None,))[0]
            still = sid is not None and sio.manager.is_connected(sid, "/")
            print(f"client still connected: {still}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    print("application handler calls:")
    for call in calls:
        print("  ", call)
    broken = len(calls) > 2  # the real connect and the real disconnect
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
