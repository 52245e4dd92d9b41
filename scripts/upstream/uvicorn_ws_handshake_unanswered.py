"""uvicorn's websockets-sansio protocol leaves a handshake refused for its size unanswered.

websockets' ServerProtocol refuses a request line or header line over MAX_LINE_LENGTH
(8 KiB) and more than MAX_NUM_HEADERS (128) headers: it queues a 414 or 431 response in
its output buffer (ServerProtocol.parse). WebSocketsSansIOProtocol.data_received() only
writes data_to_send() when an event comes out (a Request or a frame); here none does,
so the answer is never written and the connection is never closed. The client waits
with its connection open, and so does the server (no timeout applies).

uvicorn with its defaults (httptools, websockets-sansio) and a WebSocket echo app.
Each client waits 3 s for any answer. Exit status 1: defect present; 0: fixed.
"""

import asyncio
import base64
import os
import sys

import uvicorn


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})


async def serve(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


def handshake(path="/ws", extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode()  # fmt: skip


async def attempt(port, request):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(request)
    try:
        answer = await asyncio.wait_for(reader.read(100), 3)
        result = answer.split(b"\r\n")[0].decode() or "connection closed, no answer"
    except TimeoutError:
        result = "no answer within 3 s, connection still open"
    writer.close()
    return result


async def main():
    server, task, port = await serve(app)
    cases = {
        "plain handshake": handshake(),
        "request line of 9 KiB": handshake("/ws?" + "a" * 9000),
        "Authorization header of 9 KiB": handshake(extra=f"Authorization: Bearer {'a' * 9000}\r\n"),
        "130 headers": handshake(extra="".join(f"X-H{i}: v\r\n" for i in range(130))),
    }
    try:
        results = {name: await attempt(port, request) for name, request in cases.items()}
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    for name, result in results.items():
        print(f"{name:31} -> {result}")
    broken = any("no answer" in result for result in results.values())
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
