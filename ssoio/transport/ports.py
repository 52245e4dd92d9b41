"""What the transport calls up into: the application behind the Socket.IO server.

The transport package sits below ``ssoio.realtime``: it never imports it. It calls the
application through this protocol, the way python-socketio calls an application's
``connect``/``disconnect``/event handlers. ``ssoio.realtime.gateway.Gateway`` implements
it (structurally: no import either way); ``SocketServer`` is built with a factory that
receives the server (the gateway's own ``Transport``) and returns the application.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ssoio.errors import SsoioError

__all__ = ["OriginCheck", "SocketApp"]


class OriginCheck(Protocol):
    """The Origin allow-list (CORS answers; OriginGuard refused the others already)."""

    def allows(self, origin: str | None) -> bool: ...


class SocketApp(Protocol):
    """The application side of one node's Socket.IO server."""

    @property
    def origins(self) -> OriginCheck: ...

    def session_opened(self, eio_sid: str, ip: str) -> bool | SsoioError:
        """An Engine.IO session opens from ``ip``; False refuses it (the node is
        draining), an error refuses it with that code (``rate_limited``: too many
        unauthenticated sessions from that address)."""
        ...

    def session_closed(self, eio_sid: str) -> None:
        """The Engine.IO session ended (whatever ended it)."""
        ...

    async def connect(
        self, sid: str, eio_sid: str, namespace: str, environ: Mapping[str, Any], auth: object
    ) -> object:
        """A Socket.IO CONNECT; raises ``ssoio.errors.SsoioError`` to refuse it."""
        ...

    def disconnected(self, sid: str, eio_sid: str | None, reason: str) -> None:
        """A connection of ``namespace`` ended."""
        ...

    async def handle_event(self, sid: str, name: str, args: list[Any]) -> dict[str, Any] | None:
        """A client event; the ack's body (``{"ok": ...}``), or None for no ack."""
        ...

    def pid_of(self, sid: str) -> str | None:
        """Connection state recovery: the private session id the CONNECT answer carries
        (socket.io 4.6+: ``{sid, pid}``); None when recovery is off."""
        ...

    def take_replay(self, sid: str) -> tuple[list[list[Any]], str | None]:
        """Connection state recovery: the events to send right after the CONNECT answer
        (``[event, *args]``), and the offset of the last replayed room event."""
        ...
