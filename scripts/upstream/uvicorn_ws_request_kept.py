"""uvicorn's websockets-sansio protocol keeps the handshake request and response objects.

WebSocketsSansIOProtocol.handle_connect() stores the parsed handshake in
``self.request`` and the answer in ``self.response``; neither is used once the 101 has
been sent, and both stay referenced for the life of the connection. The request holds a
second copy of every handshake header (the ASGI scope has the first), an Authorization
header included; with thousands of idle connections the two objects are a measurable
part of each connection's memory.

uvicorn with its defaults (httptools, websockets-sansio) and an app that accepts and
waits; 200 clients connect with an Authorization header. Exit status 1: defect present.
"""

import asyncio
import sys

import uvicorn
from websockets.asyncio.client import connect

CLIENTS = 200
TOKEN = "eyJhbGciOiJSUzI1NiJ9.SECRET-ACCESS-TOKEN.c2lnbmF0dXJl"  # noqa: S105 (a fake)


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass


async def serve(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


def deep_size(obj, seen=None):
    """Bytes held by ``obj`` and what it references (containers, instance dicts)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, type):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set)):
        size += sum(deep_size(item, seen) for item in obj)
    elif hasattr(obj, "__dict__"):
        size += deep_size(vars(obj), seen)
    return size


async def main():
    server, task, port = await serve(app)
    url = f"ws://127.0.0.1:{port}/ws"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    clients = []
    try:
        for _ in range(CLIENTS):
            ws = await connect(url, ping_interval=None, open_timeout=5, additional_headers=headers)
            clients.append(ws)
        await asyncio.sleep(0.3)
        protocols = [c for c in server.server_state.connections if hasattr(c, "conn")]
        kept = [p for p in protocols if getattr(p, "request", None) is not None]
        with_token = [p for p in kept if TOKEN in p.request.headers.get("Authorization", "")]
        held = [deep_size(p.request) + deep_size(getattr(p, "response", None)) for p in kept]
        print(f"{len(protocols)} open WebSocket connections; {len(kept)} keep their handshake "
              f"request, {len(with_token)} of them with the Authorization header")  # fmt: skip
        if held:
            print(f"request + response objects held per connection: ~{sum(held) // len(held)} "
                  "bytes")  # fmt: skip
    finally:
        for ws in clients:
            await ws.close()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    broken = bool(kept)
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
