"""Which transport path the suite runs on: ``SSOIO_TRANSPORT=stock`` runs every node the
harnesses start (tests/security/harness.py ``running_node``, tests/interop's
``running_ssoio`` and cluster nodes, tests/transport's ``node``) with
``server.transport = "stock"``: uvicorn's, python-engineio's and python-socketio's own
classes (ssoio/transport/gates.py). ``make test`` runs tests/security, tests/transport
and tests/interop a second time that way; tests marked ``ssoio_transport`` (a protection
only ssoio's classes have) are deselected on that leg (tests/conftest.py)."""

from __future__ import annotations

import os
from typing import Literal

import pytest

from ssoio.config import Settings

__all__ = [
    "BACKLOG_LIMIT",
    "BINARY_NOT_BUFFERED",
    "ENGINE_CONFORMANCE",
    "HANDSHAKE_LIMITS",
    "HTTP_EDGE",
    "MALFORMED_PACKETS",
    "PING_TIMEOUT",
    "POLL_ENDS_WITH_NOOP",
    "SECOND_CONNECT",
    "SESSION_INTERNALS",
    "on_path",
    "ssoio_only",
    "transport_path",
]


def transport_path() -> Literal["ssoio", "stock"]:
    value = os.environ.get("SSOIO_TRANSPORT", "ssoio") or "ssoio"
    if value not in ("ssoio", "stock"):
        raise ValueError(f"SSOIO_TRANSPORT must be ssoio or stock, not {value!r}")
    return "stock" if value == "stock" else "ssoio"


def on_path(settings: Settings) -> Settings:
    """``settings`` on the suite's transport path (unchanged on the default path, and when
    a test chose a path itself)."""
    if transport_path() == "ssoio" or settings.server.transport == "stock":
        return settings
    server = settings.server.model_copy(update={"transport": "stock"})
    return settings.model_copy(update={"server": server})


def ssoio_only(reason: str) -> pytest.MarkDecorator:
    """Mark a test of a protection only ssoio's transport classes have (the stock path
    lacks it by design: ssoio/transport/gates.py); deselected on the stock path."""
    return pytest.mark.ssoio_transport(reason=reason)


# Why a test runs on the ssoio path only (each one of gates.py's ``Piece.lacks``)
MALFORMED_PACKETS = (
    "socketio.server: a malformed Socket.IO packet (or an attachment nobody announced) "
    "closes its session with one log line only on ssoio's SocketServer; python-socketio "
    "logs a stack trace and keeps the connection"
)
POLL_ENDS_WITH_NOOP = (
    "engineio.socket: a pending long-poll of a session that ends is answered NOOP only by "
    "ssoio's EngineSocket; python-engineio answers it 400"
)
HTTP_EDGE = (
    "uvicorn.http: request-line, header-line and header-count limits, read deadlines and "
    "per-address caps are ssoio's HttpProtocol's; uvicorn's h11 protocol bounds the head "
    "as a whole only"
)
HANDSHAKE_LIMITS = (
    "uvicorn.websocket: a handshake over websockets' own 8 KiB line limit is answered "
    "(and a large Bearer header accepted) only by ssoio's WebSocketProtocol; uvicorn's "
    "leaves it unanswered"
)
BINARY_NOT_BUFFERED = (
    "socketio.server: binary attachments are refused before they are buffered only by "
    "ssoio's SocketServer; python-socketio buffers every announced attachment"
)
BACKLOG_LIMIT = (
    "socketio.server: realtime.max_backlog_packets is enforced in ssoio's "
    "SocketServer._send_eio_packet; python-socketio has no seam for it"
)
SECOND_CONNECT = (
    "socketio.server: a second CONNECT to a namespace is answered namespace_forbidden "
    'only by ssoio\'s SocketServer; python-socketio answers "Unable to connect"'
)
PING_TIMEOUT = (
    "engineio.socket: CLOSE on a ping timeout, and the WebSocket ended with the session, "
    "only with ssoio's EngineSocket; python-engineio drops the CLOSE"
)
ENGINE_CONFORMANCE = (
    "engineio.socket: the Engine.IO v4 suite's pingInterval in milliseconds, a second "
    "concurrent poll closing the session and no NOOP after an upgrade are ssoio's "
    "EngineServer/EngineSocket fixes; python-engineio 4.15 fails those cases"
)
SESSION_INTERNALS = (
    "engineio.socket: tests the internals of ssoio's EngineSocket (tasks, timers, the "
    "last packet dropped); python-engineio's sessions have their own"
)
