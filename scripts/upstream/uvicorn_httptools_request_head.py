"""uvicorn's httptools protocol reads a request head of any size, for any length of time.

HttpToolsProtocol appends every header to the request's list (on_header) and the target
to ``self.url`` (on_url) with no limit on their size or number, and sets no deadline for
a request head to arrive: the keep-alive timeout only starts after a response. One client
can make a worker hold hundreds of MB, or keep connections open indefinitely by sending a
byte now and then (slowloris). The h11 protocol refuses a head over
h11_max_incomplete_event_size (16 KiB by default); it sets no deadline either.

The server runs in a subprocess (uvicorn, http="httptools" or "h11", a trivial ASGI app)
and its RSS is read from /proc/PID/status. Exit status 1: defect present; 0: fixed.
"""

import asyncio
import inspect
import os
import socket
import subprocess
import sys
import tempfile
import time

HEAD_MIB = 64


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def serve(http, port_file):
    import uvicorn

    options = {}
    if "timeout_request_head" in inspect.signature(uvicorn.Config).parameters:
        options["timeout_request_head"] = 3  # the proposed patch's deadline, shortened here
    config = uvicorn.Config(app, http=http, loop="asyncio", log_level="critical", lifespan="off",
                            **options)  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # clients may connect as soon as the port is known
    with open(port_file, "w") as out:
        out.write(str(sock.getsockname()[1]))
    uvicorn.Server(config).run(sockets=[sock])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def huge_head(port, pid):
    """Send HEAD_MIB MiB of header lines and never end the head."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    before = rss_mib(pid)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    chunk = (b"X-Pad: " + b"a" * 8185 + b"\r\n") * 8  # 64 KiB of 8 KiB header lines
    answer, closed = b"", False
    for _ in range(HEAD_MIB * 16):
        try:
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 5)
            await asyncio.sleep(0.002)  # room for an answer before writing on
        except (ConnectionError, TimeoutError):
            closed = True
            break
        if reader.at_eof() or len(reader._buffer):  # the server answered or closed
            break
    await asyncio.sleep(0.5)
    grown = rss_mib(pid) - before
    try:
        answer = await asyncio.wait_for(reader.read(200), 1)
        closed = closed or not answer or reader.at_eof()
    except ConnectionError:
        closed = True  # an answer, if any, may be lost to the reset
    except TimeoutError:
        pass
    writer.close()
    if answer:
        return grown, answer.split(b"\r\n")[0].decode()
    return grown, "connection closed by the server" if closed else "no answer, still open"


async def slow_head(port, seconds=6.0):
    """One header byte a second: is the connection still open after ``seconds``?"""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    start = time.monotonic()
    while time.monotonic() - start < seconds:  # bounded
        await asyncio.sleep(1)
        try:
            writer.write(b"a")
            await writer.drain()
        except ConnectionError:
            return False
        if reader.at_eof():
            return False
    writer.close()
    return True


def start(http, port_file):
    if os.path.exists(port_file):
        os.remove(port_file)
    proc = subprocess.Popen([sys.executable, __file__, "serve", http, port_file])
    for _ in range(200):
        if os.path.exists(port_file) and os.path.getsize(port_file):
            break
        time.sleep(0.05)
    with open(port_file) as port:
        return proc, int(port.read())


async def main():
    port_file = os.path.join(tempfile.gettempdir(), f"uvicorn-head-{os.getpid()}.port")
    results = {}
    for http in ("httptools", "h11"):
        proc, port = start(http, port_file)
        try:
            grown, status = await huge_head(port, proc.pid)
            slow = await slow_head(port)
        finally:
            proc.terminate()
            proc.wait(10)
        results[http] = (grown, status, slow)
        print(f"http={http}: {HEAD_MIB} MiB of header lines -> {status}; server RSS grew "
              f"{grown:.0f} MiB; slowloris connection still open after 6 s: {slow}")  # fmt: skip
    os.remove(port_file)
    grown, _, slow = results["httptools"]
    broken = grown > 16 or slow
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], sys.argv[3])
    else:
        sys.exit(asyncio.run(main()))
