"""Origin checks on the Socket.IO handshake, before Engine.IO sees the request.

Cross-site WebSocket hijacking: a page of another site opens a WebSocket (or polling
XHR) to ssoio and the browser attaches the user's cookies. Requests to every path
python-engineio serves (``/socket.io`` and ``/socket.io/...``, ``serves_engine``) whose
``Origin`` is not allowed are refused here with HTTP 403 and ``{"code":
"origin_denied"}`` (a WebSocket handshake is closed, which the client sees as a 403),
so no Engine.IO session is ever created for them.

A request without ``Origin`` is a non-browser client's, or a browser's same-origin GET,
or a browser's request that no page script can read: an ``<img>``/``<script>`` load or
a navigation. The last kind opens Engine.IO sessions a foreign page can make any
visitor's browser open, counted against the visitor's IP (filling
``realtime.max_unauthenticated_per_ip`` for everyone behind that address): browsers
label it with Fetch Metadata (``Sec-Fetch-Mode`` ``no-cors``/``navigate``,
``Sec-Fetch-Dest`` ``image``/``script``/``document``..., W3C Fetch Metadata Request
Headers §2), and it is refused the same way. Non-browser clients send no ``Sec-Fetch-*``
and are not affected; the Socket.IO client's own requests are ``cors`` mode, ``empty``
destination (``websocket`` for a WebSocket).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from ssoio.audit import Observer
from ssoio.errors import OriginDenied
from ssoio.realtime.origins import OriginPolicy
from ssoio.transport.environ import ENGINE_PATH, serves_engine

__all__ = ["OriginGuard"]


class OriginGuard:
    """ASGI middleware: refuse disallowed origins, and Origin-less requests a page cannot
    read, on ``path`` (default ``/socket.io/``, as python-engineio matches it)."""

    def __init__(
        self,
        app: ASGIApp,
        origins: Callable[[], OriginPolicy],
        observe: Observer,
        path: str = ENGINE_PATH,
    ) -> None:
        self.app = app
        self.origins = origins  # read per request: a reload may change the allowed origins
        self.observe = observe
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and serves_engine(str(scope["path"]), self.path):
            origin = _header(scope, b"origin")
            if not self.origins().allows(origin):
                self.observe("auth.origin.refused", origin=origin, transport=scope["type"])
                await _refuse(scope, send)
                return
            if origin is None and _unreadable_browser_request(scope):
                self.observe("auth.origin.refused", origin=None, transport=scope["type"],
                             reason="no_cors")  # fmt: skip
                await _refuse(scope, send)
                return
        await self.app(scope, receive, send)


# Fetch Metadata values (W3C Fetch Metadata Request Headers §2.2-2.3) of the requests a
# Socket.IO client makes: XHR/fetch (cors or same-origin mode, empty destination) and
# WebSocket handshakes. Anything else is a request a page cannot read the answer of.
_CLIENT_MODES = frozenset({"cors", "same-origin", "websocket"})
_CLIENT_DESTINATIONS = frozenset({"empty", "websocket"})


def _unreadable_browser_request(scope: Scope) -> bool:
    """A browser request made for an element or a navigation (by Fetch Metadata), not by
    a script that could read the answer."""
    mode = _header(scope, b"sec-fetch-mode")
    dest = _header(scope, b"sec-fetch-dest")
    return (mode is not None and mode.strip().lower() not in _CLIENT_MODES) or (
        dest is not None and dest.strip().lower() not in _CLIENT_DESTINATIONS
    )


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
