"""The transport of one node, assembled from the pieces ``gates.select`` chose: ssoio's
class for each verified piece, the stock upstream class for the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ssoio.config.model import Settings
from ssoio.transport.edge import ConnectionLedger, HttpLimits
from ssoio.transport.engine import AddressedEngineServer, EngineServer
from ssoio.transport.gates import Selection
from ssoio.transport.manager import manager_for
from ssoio.transport.protocols import HttpProtocol
from ssoio.transport.server import App, SocketServer, SocketServerBase
from ssoio.transport.stock import StockSocketServer
from ssoio.transport.websocket import WebSocketProtocol

__all__ = ["socket_server", "uvicorn_protocols"]


def socket_server(
    settings: Settings,
    app_factory: Callable[[SocketServerBase[App]], App],
    selection: Selection,
) -> SocketServerBase[App]:
    """The node's Socket.IO server (and its client manager: over Redis when clustered)."""
    cluster = settings.cluster
    manager = manager_for(
        selection,
        cluster.redis_url if cluster.enabled else None,
        channel=f"{cluster.channel}:socketio",
    )
    if not selection.uses("socketio.server"):
        return StockSocketServer(settings, app_factory, manager)
    return SocketServer(settings, app_factory, manager, _engine_class(selection))


def _engine_class(selection: Selection) -> type[Any] | None:
    # both engine pieces have the same verified ranges: they run together or not at all
    if selection.uses("engineio.socket"):
        return EngineServer
    if selection.uses("engineio.environ"):
        return AddressedEngineServer
    return None  # python-socketio's own (python-engineio's AsyncServer)


def uvicorn_protocols(
    selection: Selection, limits: HttpLimits, ledger: ConnectionLedger | None
) -> dict[str, Any]:
    """``uvicorn.Config`` options for the HTTP and WebSocket protocols."""
    options: dict[str, Any] = {}
    if selection.uses("uvicorn.http"):
        options["http"] = HttpProtocol.bound(limits, ledger)
    else:
        # uvicorn's h11 protocol bounds a request head as a whole (httptools does not)
        options["http"] = "h11"
        options["h11_max_incomplete_event_size"] = limits.head
    options["ws"] = (
        WebSocketProtocol if selection.uses("uvicorn.websocket") else "websockets-sansio"
    )
    return options
