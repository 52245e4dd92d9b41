"""python-engineio serves JSONP long-polling (``j=``) to Engine.IO v4 clients.

Engine.IO v4 does not describe JSONP and the v4 JavaScript client no longer uses it. A
JSONP poll is a plain GET answered with a script (``___eio[N]("...")``), so any web page
can load it with a ``<script src>`` element, which sends no Origin header: the origin
check (cors_allowed_origins) only runs when an Origin header is present. Also prints,
for reference, which request paths reach the engine.

Exit status 1: JSONP served without an Origin; 0: refused.
"""

import asyncio
import sys

import engineio
import uvicorn

opened = []


async def serve(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


async def get(port, target, headers=""):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}"
                 "Connection: close\r\n\r\n".encode())  # fmt: skip
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = body.split(b"\r\n", 1)[1]  # the first chunk is enough here
    return head.split(b"\r\n")[0].decode(), body.decode(errors="replace")


async def main():
    eio = engineio.AsyncServer(async_mode="asgi")  # default: same-origin only

    @eio.on("connect")
    def connect(sid, environ):
        opened.append(environ.get("HTTP_COOKIE"))

    server, task, port = await serve(engineio.ASGIApp(eio))
    try:
        jsonp = "/engine.io/?EIO=4&transport=polling&j=0"
        status, body = await get(port, jsonp, "Cookie: session=victim\r\n")
        print(f"GET {jsonp} (no Origin, as a <script> sends it)")
        print(f"  -> {status}  {body.splitlines()[0][:60]}...")
        print(f"  connect handler ran with the page's cookies: {opened}")
        broken = bool(opened)
        status, _ = await get(port, jsonp, "Origin: http://evil.example\r\n")
        print(f"the same with Origin: http://evil.example\n  -> {status}")
        print("paths reaching the engine (for reference):")
        for path in ("/engine.io/", "/engine.io", "/engine.io/any/thing/", "/engine.iox"):
            status, _ = await get(port, f"{path}?EIO=4&transport=polling")
            print(f"  {path:22} -> {status}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
