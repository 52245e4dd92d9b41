"""Origin checks on the Socket.IO handshake, before Engine.IO sees the request.

Cross-site WebSocket hijacking: a page of another site opens a WebSocket (or polling
XHR) to ssoio and the browser attaches the user's cookies. Requests under
``/socket.io/`` whose ``Origin`` is not allowed are refused here with HTTP 403 and
``{"code": "origin_denied"}`` (a WebSocket handshake is closed, which the client sees
as a 403), so no Engine.IO session is ever created for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from ssoio.audit import Observer
from ssoio.errors import OriginDenied
from ssoio.realtime.origins import OriginPolicy

__all__ = ["OriginGuard"]


class OriginGuard:
    """ASGI middleware: refuse disallowed origins on ``path`` (default ``/socket.io/``)."""

    def __init__(
        self,
        app: ASGIApp,
        origins: Callable[[], OriginPolicy],
        observe: Observer,
        path: str = "/socket.io/",
    ) -> None:
        self.app = app
        self.origins = origins  # read per request: a reload may change the allowed origins
        self.observe = observe
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and str(scope["path"]).startswith(self.path):
            origin = _header(scope, b"origin")
            if not self.origins().allows(origin):
                self.observe("auth.origin.refused", origin=origin, transport=scope["type"])
                await _refuse(scope, send)
                return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _refuse(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"ok": False, "error": OriginDenied().as_dict()}).encode()
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})
