"""With logger=False, python-engineio still attaches its own StreamHandler.

BaseServer.__init__ adds ``logging.StreamHandler()`` (stderr, no formatter) to the
"engineio.server" logger whenever that logger's level is NOTSET, logger=False included.
An application that configured logging (its own format, e.g. JSON, and destination) gets
every engineio error twice: once through its own handlers, once as raw text on stderr,
outside its format. The raw line includes client-chosen text: an unknown ``sid`` query
value, control characters and all (log injection, terminal escapes).

python-socketio's BaseServer has the same code for the "socketio.server" logger.

The application here logs through a root handler in JSON. Exit status 1: defect present.
"""

import asyncio
import io
import json
import logging
import sys

import engineio
import socketio
import uvicorn

app_lines = []


class AppHandler(logging.Handler):
    """The application's own logging: one JSON object per record."""

    def emit(self, record):
        app_lines.append(json.dumps({"level": record.levelname, "msg": record.getMessage()}))


async def serve(app):
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                            log_config=None)  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


async def get(port, target):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data.split(b"\r\n")[0].decode()


async def main():
    logging.getLogger().addHandler(AppHandler())
    raw = io.StringIO()
    real_stderr, sys.stderr = sys.stderr, raw  # what a StreamHandler() created now writes to
    try:
        eio = engineio.AsyncServer(async_mode="asgi", logger=False)
    finally:
        sys.stderr = real_stderr
    handlers = logging.getLogger("engineio.server").handlers
    print(f"handlers on 'engineio.server' after AsyncServer(logger=False): {handlers}")
    socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
    sio_handlers = logging.getLogger("socketio.server").handlers
    print(f"python-socketio, the same code: 'socketio.server' handlers: {sio_handlers}")
    server, task, port = await serve(engineio.ASGIApp(eio))
    try:
        forged = "%1b[2J%0a2026-01-01%2000:00:00%20CRITICAL%20root:%20forged%20line"
        status = await get(port, f"/engine.io/?EIO=4&transport=polling&sid={forged}")
        print(f"GET with a sid holding ESC and LF -> {status}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    print(f"the application's handler: {app_lines}")
    print(f"raw text written to stderr by engineio's own handler: {raw.getvalue()!r}")
    broken = bool(raw.getvalue()) or bool(sio_handlers)
    print("RESULT:", "defect reproduced" if broken else "behaves correctly")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
