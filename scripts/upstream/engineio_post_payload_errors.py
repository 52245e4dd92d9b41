"""A long-polling POST that python-engineio cannot decode is answered 200 "OK".

Payload.decode() raises ValueError for more than max_decode_packets (16) packets, and
Packet.decode() for a packet that does not start with a digit. The ValueError escapes
AsyncSocket.handle_post_request(); AsyncServer.handle_request() catches it with a bare
``except``, logs it with its traceback ("post request handler error") and answers
200 "OK": the client is told its packets were delivered, none was, and the session goes
on. The Engine.IO v4 protocol test suite expects 400 and the session closed ("closes the
session upon invalid packet format"). The JavaScript client sends every buffered packet
in one POST (up to maxPayload bytes), so 17 quick emits over long-polling are enough.

Where python-engineio does answer 400 (a POST over max_http_buffer_size), it first
disconnects the session with wait=True, which waits for a GET request to collect the
CLOSE packet: with no GET pending, the POST is left unanswered.

Exit status 1: defect present; 0: fixed.
"""

import asyncio
import logging
import sys

import engineio
import uvicorn

messages = []
records = []


class Keep(logging.Handler):
    def emit(self, record):
        records.append(record)


async def serve(app):
    # timeout_graceful_shutdown: do not wait for the polls left pending
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=1)  # fmt: skip
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
                 f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                 + body)  # fmt: skip
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, content = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), content


async def post(port, eio, label, body, pending_get=True):
    """Open a session, then POST ``body`` (with a GET pending, as clients do)."""
    status, content = await request(port, "GET", "/engine.io/?EIO=4&transport=polling")
    sid = content.split(b'"sid":"')[1].split(b'"')[0].decode()
    target = f"/engine.io/?EIO=4&transport=polling&sid={sid}"
    poll = asyncio.create_task(request(port, "GET", target)) if pending_get else None
    await asyncio.sleep(0.1)
    messages.clear()
    records.clear()
    try:
        status, content = await request(port, "POST", target, body)
    except TimeoutError:
        status, content = "(no answer within 5 s)", b""
    await asyncio.sleep(0.2)  # message handlers run as tasks
    tracebacks = [r.getMessage() for r in records if r.exc_info]
    print(f"{label}\n  -> {status} {content!r}; messages delivered: {len(messages)}; "
          f"session still open: {sid in eio.sockets}; tracebacks logged: {tracebacks}")  # fmt: skip
    if poll is not None:
        poll.cancel()
    return status.split()[1], sid in eio.sockets


async def main():
    eio = engineio.AsyncServer(async_mode="asgi", max_http_buffer_size=10_000)
    logging.getLogger("engineio.server").addHandler(Keep())

    @eio.on("message")
    def message(sid, data):
        messages.append(data)

    server, task, port = await serve(engineio.ASGIApp(eio))
    try:
        await post(port, eio, "POST of 16 packets", "\x1e".join(["4hi"] * 16).encode())
        many = await post(port, eio, "POST of 17 packets", "\x1e".join(["4hi"] * 17).encode())
        bad = await post(port, eio, "POST of an invalid packet", b"abc")
        alone = await post(port, eio, "POST of an invalid packet, no GET pending", b"abc", False)
        big = b"4" + b"x" * eio.max_http_buffer_size  # one byte over the limit
        large = await post(port, eio, "POST over max_http_buffer_size, no GET pending", big, False)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    broken = any(result != ("400", False) for result in (many, bad, alone, large))
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
