"""The WSGI-style environ python-engineio builds for each request, built correctly.

python-engineio's ASGI driver (4.x) sets ``REMOTE_ADDR`` to ``127.0.0.1`` for every
request, which would make every per-IP limit global; ssoio takes the client address
from the ASGI scope (which uvicorn has already rewritten from ``X-Forwarded-For`` when
the peer is a trusted proxy). The driver also defines a class inside the function, one
per request, kept alive per connection; here it is defined once (~3 KiB per connection).
Upstream: docs/upstream/python-engineio-remote-addr.md. Piece ``engineio.environ`` of
``ssoio.transport.gates`` (python-engineio 4.15's ``async_drivers.asgi.translate_request``,
fingerprinted); on the stock path ``server.client_address`` still corrects
``REMOTE_ADDR``.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

__all__ = ["ENGINE_PATH", "serves_engine", "translate_request"]


# socketio.ASGIApp's default socketio_path ("socket.io"), as python-engineio stores it
ENGINE_PATH = "/socket.io/"


def serves_engine(path: str, prefix: str = ENGINE_PATH) -> bool:
    """Whether python-engineio's ASGI app (4.x ``ASGIApp.__call__``) hands a request for
    ``path`` to the Engine.IO server: it adds a trailing slash to the path before
    comparing the prefix, so ``/socket.io`` is served as well as ``/socket.io/...``.
    Guards in front of it must match exactly the same requests."""
    return (path if path.endswith("/") else path + "/").startswith(prefix)


class _Payload:
    """The request body, read lazily from the ASGI receive channel."""

    __slots__ = ("event", "payload", "receive")

    def __init__(self, event: dict[str, Any], receive: Any) -> None:
        self.event = event
        self.payload: bytes | None = None
        self.receive = receive

    async def read(self, length: int | None = None) -> bytes:
        if self.payload is None and self.event["type"] == "http.request":
            self.payload = self.event.get("body") or b""
            while self.event.get("more_body"):
                self.event = await self.receive()
                if self.event["type"] == "http.request" and (
                    length is None or len(self.payload) < length
                ):
                    self.payload += self.event.get("body") or b""
        payload = self.payload or b""
        if length is None:
            self.payload = b""
            return payload
        self.payload = payload[length:]
        return payload[:length]


async def translate_request(scope: dict[str, Any], receive: Any, send: Any) -> dict[str, Any]:
    """python-engineio's ``translate_request``, with the real client address."""
    event = await receive()
    if event["type"] not in ("http.request", "websocket.connect"):
        return {}
    query_string = ""
    with contextlib.suppress(UnicodeDecodeError):
        query_string = (scope.get("query_string") or b"").decode("utf-8")
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "wsgi.input": _Payload(event, receive),
        "wsgi.errors": sys.stderr,
        "wsgi.async": True,
        "REQUEST_METHOD": scope.get("method", "GET"),
        "PATH_INFO": scope["path"],
        "QUERY_STRING": query_string,
        "RAW_URI": scope["path"] + ("?" + query_string if query_string else ""),
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "asgi.receive": receive,
        "asgi.send": send,
        "asgi.scope": scope,
    }
    for name, value in scope["headers"]:
        try:
            key, text = name.upper().decode("utf-8"), value.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if key in ("CONTENT-TYPE", "CONTENT-LENGTH"):
            environ[key.replace("-", "_")] = text
            continue
        key = "HTTP_" + key.replace("-", "_")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ
