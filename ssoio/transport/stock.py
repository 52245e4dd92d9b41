"""The Socket.IO server of the "stock" transport path (``server.transport = "stock"``, or
python-socketio outside its verified range: ``ssoio.transport.gates``).

``StockSocketServer`` uses python-socketio's public seams only: handlers for every
namespace (``namespace="*"``), a catch-all event handler, ``ConnectionRefusedError``, and
python-engineio's ``connect``/``disconnect`` event handlers (wrapped, for the session
count). It keeps the wire contract's codes (namespace_forbidden, unknown_event for
reserved names, payload_too_large, binary events refused) and lacks what only the
private seams give: see ``gates.STOCK_LACKS``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from ssoio.config.model import Settings
from ssoio.errors import InvalidPayload, NamespaceForbidden, PayloadTooLarge, UnknownEvent
from ssoio.responses import refusal_body
from ssoio.transport.server import (
    RESERVED_EVENTS,
    App,
    SocketServerBase,
    client_address,
    refusal,
    session_refusal,
)

__all__ = ["StockSocketServer"]

log = logging.getLogger(__name__)


class StockSocketServer(SocketServerBase[App]):
    """The Socket.IO server on the "stock" transport path: python-socketio's and
    python-engineio's own classes, ssoio's rules through their public seams only."""

    def __init__(
        self,
        settings: Settings,
        app_factory: Callable[[SocketServerBase[App]], App],
        manager: Any = None,
    ) -> None:
        # every namespace reaches the connect handler, which refuses the unserved ones
        # with namespace_forbidden (python-socketio would answer "Unable to connect")
        super().__init__(settings, app_factory, manager, namespaces="*")
        self.on("connect", self._on_connect, namespace="*")
        self.on("disconnect", self._on_disconnect, namespace="*")
        self.on("*", self._on_event, namespace="*")
        # python-engineio's session events, as python-socketio registered them, wrapped
        self._socketio_eio_connect = self.eio.handlers["connect"]
        self._socketio_eio_disconnect = self.eio.handlers["disconnect"]
        self.eio.on("connect", self._on_session)
        self.eio.on("disconnect", self._on_session_end)

    async def _on_session(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        environ["REMOTE_ADDR"] = client_address(environ)
        refused = session_refusal(self.gateway.session_opened(eio_sid, environ["REMOTE_ADDR"]))
        if refused is not None:
            return refused  # python-engineio answers 401 and forgets the session
        result: bool | None = await self._socketio_eio_connect(eio_sid, environ)
        return result

    async def _on_session_end(self, eio_sid: str, *reason: Any) -> None:
        await self._socketio_eio_disconnect(eio_sid, *reason)
        self.gateway.session_closed(eio_sid)

    async def _on_connect(self, namespace: str, sid: str, *args: Any) -> Any:
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        environ = self.get_environ(sid, namespace)
        if not args or args[0] is not environ or environ is None:
            # a client event named "connect": python-socketio hands it to this handler
            # (docs/upstream/python-socketio-reserved-event-names.md); never the real
            # environ, which python-socketio keeps to itself
            log.warning("socketio.event.reserved name=connect")
            return refusal_body(UnknownEvent())
        if namespace not in self._namespaces:
            raise refusal(NamespaceForbidden("this namespace is not served"))
        await self._admit(sid, eio_sid, namespace, environ, args[1] if len(args) > 1 else None)
        return True

    async def _on_disconnect(self, namespace: str, sid: str, *args: Any) -> Any:
        if self.manager.is_connected(sid, namespace):
            # a client event named "disconnect": a real disconnect has marked the sid as
            # disconnecting (manager.pre_disconnect) before the handler runs
            log.warning("socketio.event.reserved name=disconnect")
            return refusal_body(UnknownEvent())
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
        self.gateway.disconnected(sid, eio_sid, str(args[0]) if args else "")
        return None

    async def _on_event(self, event: object, namespace: str, sid: str, *data: Any) -> Any:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            return await self._event(event, sid, list(data))
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _event(self, event: object, sid: str, data: list[Any]) -> dict[str, Any] | None:
        if not isinstance(event, str):  # a number or null: python-socketio hands it on
            return refusal_body(InvalidPayload("an event needs a name"))
        if event in RESERVED_EVENTS:
            log.warning("socketio.event.reserved name=%s", event)
            return refusal_body(UnknownEvent())
        if _has_binary(data):
            return refusal_body(InvalidPayload("binary events are refused"))
        # the encoded packet's size, as the ssoio path counts it before decoding
        if len(json.dumps([event, *data], separators=(",", ":"))) > self._max_payload:
            return refusal_body(PayloadTooLarge())
        return await self._dispatch(sid, event, data)


def _has_binary(value: object) -> bool:
    if isinstance(value, bytes | bytearray):
        return True
    if isinstance(value, list | tuple):
        return any(_has_binary(item) for item in value)
    if isinstance(value, dict):
        return any(_has_binary(item) for item in value.values())
    return False
