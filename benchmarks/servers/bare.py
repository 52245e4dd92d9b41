"""The baseline: bare python-socketio on uvicorn with every default, no authentication.

``AsyncServer(async_mode="asgi")`` behind ``socketio.ASGIApp``, run by ``uvicorn.run``
with nothing but host and port: the auto websocket implementation, permessage-deflate
accepted when the client offers it, uvicorn's default logging (INFO, access log on) and
the interpreter's default garbage collector. One ``echo`` event handler returns
``{"ok": True}`` as the ack. This is what an application gets before doing any tuning.

Run (``benchmarks/realtime.py`` does): ``.venv/bin/python benchmarks/servers/bare.py --port N``
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
import uvicorn


def build_app() -> Any:
    """The ASGI app: a default ``AsyncServer`` with one ``echo`` handler."""
    sio = socketio.AsyncServer(async_mode="asgi")

    async def echo(_sid: str, _data: Any = None) -> dict[str, Any]:
        return {"ok": True}

    sio.on("echo", echo)
    return socketio.ASGIApp(sio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build_app(), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
