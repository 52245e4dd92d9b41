"""python-engineio's ASGI driver reports REMOTE_ADDR 127.0.0.1 for every client.

Runs python-engineio under uvicorn on 127.0.0.1 and connects (long-polling) from the
loopback source address 127.0.0.2. The ASGI scope has the real client address; the
environ python-engineio hands to the connect handler does not. Also shows that
translate_request defines a new class per request (the AwaitablePayload behind
environ["wsgi.input"]).

Exit status 1: defect present; 0: fixed. Needs only python-engineio and uvicorn.
"""

import asyncio
import sys
import tracemalloc

import engineio
import uvicorn
from engineio.async_drivers import asgi

seen = []


async def serve(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


async def get(port, target, source):
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 5
    )
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def classes_per_request():
    """translate_request called directly: one new class object per request?"""
    scope = {"type": "http", "method": "GET", "path": "/engine.io/", "query_string": b"",
             "headers": [], "client": ("127.0.0.2", 4242)}  # fmt: skip

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    environs = [await asgi.translate_request(scope, receive, None) for _ in range(1000)]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    kinds = {type(environ["wsgi.input"]) for environ in environs}
    return len(kinds), grown / len(environs)


async def main():
    eio = engineio.AsyncServer(async_mode="asgi")

    @eio.on("connect")
    def connect(sid, environ):
        seen.append((environ["REMOTE_ADDR"], environ["REMOTE_PORT"],
                     environ["asgi.scope"]["client"]))  # fmt: skip

    server, task, port = await serve(engineio.ASGIApp(eio))
    try:
        answer = await get(port, "/engine.io/?EIO=4&transport=polling", "127.0.0.2")
        print("handshake answer:", answer.split(b"\r\n", 1)[0].decode())
        remote_addr, remote_port, client = seen[0]
        print(f"ASGI scope['client']      = {client!r}")
        print(f"environ['REMOTE_ADDR']    = {remote_addr!r}")
        print(f"environ['REMOTE_PORT']    = {remote_port!r}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    classes, per_request = await classes_per_request()
    print(f"1000 requests -> {classes} distinct wsgi.input classes, "
          f"{per_request:.0f} bytes allocated and kept per environ")  # fmt: skip
    broken = remote_addr != client[0] or classes > 1
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
