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

``--fanout-room ROOM`` adds what ``benchmarks/fanout.py`` needs, and nothing else changes:
every connection enters ROOM as it connects (its CONNECT ``auth``, an access token, is
ignored), and ``POST /api/v1/emit`` with ssoio's JSON body ``{"room", "event", "data"}``
emits ``event`` with ``data`` to ``room`` through ``AsyncServer.emit`` and answers 200
``{"ok": true}``; no authentication (the bearer token is ignored), no validation beyond
the JSON shape. Without the flag the app is the one ``benchmarks/realtime.py`` measures.

``--tuned`` runs the same app with the settings ssoio runs with (``ssoio.serving.uvicorn_config``
and ``tune_garbage_collector``): websockets-sansio, no permessage-deflate, raised GC
thresholds, WARNING logging, no access log, no proxy headers, no server header; uvicorn's
and python-engineio's own classes, not ssoio's lighter ones (``ssoio.transport.protocols``,
``websocket``, ``engine``). The gap between it and ssoio is what ssoio costs, net of what
those save.

Run (``benchmarks/realtime.py`` does): ``.venv/bin/python benchmarks/servers/bare.py --port N``
(``benchmarks/fanout.py`` adds ``--fanout-room tenant:acme``)
"""

from __future__ import annotations

import argparse
import gc
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import socketio
import uvicorn

from ssoio.process import GC_THRESHOLDS

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]
EMIT_PATH = "/api/v1/emit"


def build_app(fanout_room: str | None = None) -> Any:
    """The ASGI app: a default ``AsyncServer`` with the ``echo``, ``room:join`` and
    ``chat:send`` handlers; with ``fanout_room``, also the fan-out's join and emit route."""
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
    app: ASGI = socketio.ASGIApp(sio)
    if fanout_room is None:
        return app
    room = fanout_room

    async def connect(sid: str, _environ: dict[str, Any], _auth: Any = None) -> None:
        await sio.enter_room(sid, room)

    sio.on("connect", connect)
    return with_emit_route(app, sio)


def with_emit_route(app: ASGI, sio: Any) -> ASGI:
    """``app`` with ``POST /api/v1/emit`` in front of it: ``{"room", "event", "data"}``
    emitted to the room, answered 200 ``{"ok": true}`` (400 for a body of another shape)."""

    async def respond(send: Send, status: int, body: dict[str, Any]) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async def emit_route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != EMIT_PATH or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            body = json.loads(b"".join(chunks))
            room, event, data = str(body["room"]), str(body["event"]), body.get("data")
        except (ValueError, TypeError, KeyError):
            await respond(send, 400, {"ok": False})
            return
        await sio.emit(event, data, to=room)
        await respond(send, 200, {"ok": True})

    return emit_route


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tuned", action="store_true", help="run it as ssoio runs itself")
    parser.add_argument(
        "--fanout-room", metavar="ROOM", default=None,
        help="join every connection to ROOM and serve POST /api/v1/emit (benchmarks/fanout.py)",
    )  # fmt: skip
    args = parser.parse_args()
    app = build_app(args.fanout_room)
    if not args.tuned:
        uvicorn.run(app, host="127.0.0.1", port=args.port)
        return
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, ws="websockets-sansio",
        ws_per_message_deflate=False, log_level="warning", access_log=False,
        proxy_headers=False, server_header=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
