"""Four answers of python-engineio that the Engine.IO v4 protocol test suite refuses.

The suite (socketio/engine.io-protocol, test-suite/) runs its server with pingInterval
300 ms and pingTimeout 200 ms. python-engineio:

1. advertises pingInterval 0 for any interval under one second: the OPEN packet has
   ``int(self.ping_interval + self.ping_interval_grace_period) * 1000`` (the int() is
   taken before the multiplication, since 4.11.0);
2. answers a successful long-polling POST with "OK"; the protocol says the server MUST
   answer 200 with the string "ok";
3. opens a long-polling session when the ``transport`` query parameter is missing (it
   defaults to polling); the protocol says a missing mandatory parameter MUST get 400;
4. answers an unsupported method (PUT) 405; the suite expects 400.

Exit status 1: any of them present; 0: all conform.
"""

import asyncio
import json
import sys

import engineio
import uvicorn


async def serve(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


async def request(port, method, target, body=b""):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, content = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        content = content.split(b"\r\n")[1]  # one chunk is all these answers have
    return int(head.split(b" ")[1]), content.decode()


async def main():
    eio = engineio.AsyncServer(async_mode="asgi", ping_interval=0.3, ping_timeout=0.2,
                               logger=False)  # fmt: skip
    server, task, port = await serve(engineio.ASGIApp(eio))
    try:
        base = "/engine.io/?EIO=4&transport=polling"
        status, content = await request(port, "GET", base)
        opened = json.loads(content[1:])
        print(f"1. ping_interval=0.3, ping_timeout=0.2 -> OPEN packet pingInterval="
              f"{opened['pingInterval']}, pingTimeout={opened['pingTimeout']} "
              "(suite expects 300, 200)")  # fmt: skip
        status, content = await request(port, "POST", f"{base}&sid={opened['sid']}", b"4hello")
        print(f"2. POST 4hello -> {status} {content!r} (protocol: 200 'ok')")
        no_transport, _ = await request(port, "GET", "/engine.io/?EIO=4")
        print(f"3. GET without transport -> {no_transport} (protocol: 400)")
        put, _ = await request(port, "PUT", base)
        print(f"4. PUT -> {put} (suite expects 400)")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    broken = [opened["pingInterval"] != 300, content != "ok", no_transport != 400, put != 400]
    print("RESULT:", "defect reproduced" if any(broken) else "behaves correctly",
          f"(cases failing: {[i + 1 for i, bad in enumerate(broken) if bad]})")  # fmt: skip
    return 1 if any(broken) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
