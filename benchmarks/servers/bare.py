"""The baseline: bare python-socketio on uvicorn with every default, no authentication.

``AsyncServer(async_mode="asgi")`` behind ``socketio.ASGIApp``, run by ``uvicorn.run``
with nothing but host and port: the auto websocket implementation, permessage-deflate
accepted when the client offers it, uvicorn's default logging (INFO, access log on) and
the interpreter's default garbage collector. One ``echo`` event handler returns
``{"ok": True}`` as the ack; ``room:join {room}`` enters the room; ``chat:send {room, ...}``
emits ``chat:message`` (the payload plus ``from``) to the whole room, the sender included
as ssoio's relay does, and acks ``{"ok": True}`` (no field visibility: the relay an
application writes without a guard). This is what an application gets before doing any
tuning.

``--tuned`` runs the same app with the settings ssoio runs with (``ssoio.serving.uvicorn_config``
and ``tune_garbage_collector``): websockets-sansio, no permessage-deflate, raised GC
thresholds, WARNING logging, no access log, no proxy headers, no server header; uvicorn's
and python-engineio's own classes, not ssoio's lighter ones (``ssoio.transport.protocols``,
``ssoio.transport.engine``). The gap between it and ssoio is what ssoio costs, net of what
those save.

Run (``benchmarks/realtime.py`` does): ``.venv/bin/python benchmarks/servers/bare.py --port N``
"""

from __future__ import annotations

import argparse
import gc
from typing import Any

import socketio
import uvicorn

from ssoio.process import GC_THRESHOLDS


def build_app() -> Any:
    """The ASGI app: a default ``AsyncServer`` with the ``echo``, ``room:join`` and
    ``chat:send`` handlers."""
    sio = socketio.AsyncServer(async_mode="asgi")

    async def echo(_sid: str, _data: Any = None) -> dict[str, Any]:
        return {"ok": True}

    async def join(sid: str, data: Any = None) -> dict[str, Any]:
        room = str(data.get("room", "")) if isinstance(data, dict) else ""
        await sio.enter_room(sid, room)
        return {"ok": True, "room": room}

    async def chat_send(sid: str, data: Any = None) -> dict[str, Any]:
        payload = dict(data) if isinstance(data, dict) else {}
        await sio.emit("chat:message", {**payload, "from": sid}, to=str(payload.get("room", "")))
        return {"ok": True}

    sio.on("echo", echo)
    sio.on("room:join", join)
    sio.on("chat:send", chat_send)
    return socketio.ASGIApp(sio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tuned", action="store_true", help="run it as ssoio runs itself")
    args = parser.parse_args()
    if not args.tuned:
        uvicorn.run(build_app(), host="127.0.0.1", port=args.port)
        return
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn.run(
        build_app(), host="127.0.0.1", port=args.port, ws="websockets-sansio",
        ws_per_message_deflate=False, log_level="warning", access_log=False,
        proxy_headers=False, server_header=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
