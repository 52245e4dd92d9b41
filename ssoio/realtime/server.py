"""python-socketio adapted to the gateway: one guarded dispatch path, no surprises.

What this subclass changes, and why (python-socketio 5.x behaviour, see NOTES.md):

* Client events never reach python-socketio's handler lookup: ``_handle_event`` hands
  them to ``Gateway.handle_event`` and sends its answer as the ack. A client-sent event
  named ``connect``/``disconnect`` (which python-socketio would run through the app's
  connect/disconnect handlers) is dropped.
* Messages larger than ``realtime.max_payload_bytes`` get ``payload_too_large`` without
  being decoded; binary events are refused (python-socketio would buffer any number of
  announced attachments); malformed packets close the session with one log line, never
  a stack trace.
* Unknown namespaces get ``namespace_forbidden`` instead of "Unable to connect".
* Every connect failure becomes a ``ConnectionRefusedError`` (any other exception would
  leave the client without CONNECT_ERROR and the sid registered).
* Engine.IO sessions are counted per client IP until they authenticate (``Gateway``),
  and are ``ssoio.realtime.engine`` sessions: python-engineio's, lighter.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

import socketio
from socketio import packet
from socketio.exceptions import ConnectionRefusedError as SocketRefused

from ssoio.config.model import Settings
from ssoio.errors import (
    AuthenticationError,
    InvalidPayload,
    NamespaceForbidden,
    PayloadTooLarge,
    SsoioError,
    TokenMalformed,
    UnknownEvent,
)
from ssoio.realtime.engine import EngineServer, EngineSocket
from ssoio.realtime.gateway import Gateway
from ssoio.realtime.manager import LocalManager

__all__ = ["SocketServer", "message_limit", "refusal"]

log = logging.getLogger(__name__)

# Names the Socket.IO protocol and python-socketio reserve; never client events.
RESERVED_EVENTS = frozenset(
    {"connect", "disconnect", "connect_error", "disconnecting", "newListener", "removeListener"}
)
# type digit, optional "<attachments>-", optional "/namespace,", optional ack id digits
_HEADER = re.compile(r"(?P<type>\d)(?:\d+-)?(?P<ns>/[^,]*,)?(?P<id>\d{1,15})?")


def message_limit(settings: Settings) -> int:
    """The largest Engine.IO message a client may send, in bytes: python-engineio's
    ``max_http_buffer_size`` and the WebSocket frame limit (uvicorn's ``ws_max_size``,
    ``ssoio.serving``). Messages up to it are read and answered (``payload_too_large``,
    or ``token_malformed`` for a CONNECT); beyond it the transport is closed, a
    WebSocket with 1009 (RFC 6455 §7.4.1) before its frame is read. It covers an event of
    ``realtime.max_payload_bytes`` characters JSON-escaped, and a CONNECT with a token of
    ``tokens.max_bytes``."""
    payload = 4 * settings.realtime.max_payload_bytes + 1024
    return max(payload, settings.tokens.max_bytes + 2048)


def _library_logger(name: str) -> logging.Logger:
    """The logger python-socketio/python-engineio (5.x/4.x) log through: one that
    propagates to the application's handlers (ssoio's JSON or text format). Given
    ``False`` they would add a StreamHandler of their own, writing raw text (client input
    included) next to ssoio's lines. At INFO they log every packet, a CONNECT's token
    too: WARNING unless the application set a level."""
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    return logger


def refusal(error: SsoioError) -> SocketRefused:
    """A connect refusal as the wire contract wants it: message ``unauthorized`` or
    ``forbidden``, data ``{code, message}``."""
    message = "unauthorized" if isinstance(error, AuthenticationError) else "forbidden"
    return SocketRefused(message, error.as_dict())


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """The Socket.IO server of one ssoio node; also the gateway's ``Transport``."""

    def __init__(
        self,
        settings: Settings,
        gateway_factory: Callable[[SocketServer], Gateway],
        manager: Any = None,
    ) -> None:
        realtime = settings.realtime
        self._max_payload = realtime.max_payload_bytes
        # a CONNECT carries the access token: up to tokens.max_bytes, whatever the limit
        # on event payloads (a longer token is refused as token_malformed)
        self._max_connect = max(realtime.max_payload_bytes, settings.tokens.max_bytes + 1024)
        self._max_backlog = realtime.max_backlog_packets
        self._namespaces = tuple(settings.policy.namespaces)
        super().__init__(
            async_mode="asgi",
            client_manager=manager or LocalManager(),
            namespaces=list(self._namespaces),
            cors_allowed_origins=self._origin_allowed,
            max_http_buffer_size=message_limit(settings),
            ping_interval=realtime.ping_interval_s,
            ping_timeout=realtime.ping_timeout_s,
            http_compression=False,
            logger=_library_logger("socketio.server"),
            engineio_logger=_library_logger("engineio.server"),
        )
        self.gateway = gateway_factory(self)
        self._tasks: set[asyncio.Task[None]] = set()
        self.pending_events = self._tasks  # in-flight client events (drained at shutdown)
        for namespace in self._namespaces:
            self.on("connect", self._connect_handler(namespace), namespace=namespace)
            self.on("disconnect", self._disconnect_handler(namespace), namespace=namespace)

    def _engineio_server_class(self) -> type[EngineServer]:
        return EngineServer

    def _origin_allowed(self, origin: str | None, _environ: Any = None) -> bool:
        # CORS headers only; disallowed origins were already refused by OriginGuard.
        return self.gateway.origins.allows(origin)

    # -- Transport (what the gateway needs) -----------------------------------------------

    async def enter(self, sid: str, room: str, namespace: str) -> None:
        await self.enter_room(sid, room, namespace=namespace)

    async def leave(self, sid: str, room: str, namespace: str) -> None:
        await self.leave_room(sid, room, namespace=namespace)

    async def close_session(self, eio_sid: str) -> None:
        """Close an Engine.IO session now; a waiting long-poll GET gets the CLOSE packet.

        Never ``eio.disconnect``: it waits until a GET drains the session's queue, which
        an idle long-polling client may never send, and the gateway's timer task (token
        expiry for the whole node) would wait with it."""
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None:
            await socket.close(wait=False, reason=self.eio.reason.TRANSPORT_ERROR)
            self.eio.sockets.pop(eio_sid, None)

    # -- connect / disconnect -------------------------------------------------------------

    def _connect_handler(self, namespace: str) -> Callable[..., Coroutine[Any, Any, bool]]:
        async def on_connect(sid: str, environ: dict[str, Any], auth: object = None) -> bool:
            eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
            try:
                await self.gateway.connect(sid, eio_sid, namespace, environ, auth)
            except SsoioError as error:
                raise refusal(error) from None
            except Exception as exc:  # never leave a half-connected sid behind
                log.error("auth.connect.error kind=%s", type(exc).__name__)
                raise SocketRefused(
                    "unauthorized", {"code": "idp_unavailable", "message": "try again later"}
                ) from None
            return True

        return on_connect

    def _disconnect_handler(self, namespace: str) -> Callable[..., Coroutine[Any, Any, None]]:
        async def on_disconnect(sid: str, reason: object = None) -> None:
            eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
            self.gateway.disconnected(sid, eio_sid, str(reason))

        return on_disconnect

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> bool | None:
        if not self.gateway.session_opened(eio_sid, str(environ.get("REMOTE_ADDR", ""))):
            return False
        await super()._handle_eio_connect(eio_sid, environ)
        return None

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        await super()._handle_eio_disconnect(eio_sid, reason)
        self.gateway.session_closed(eio_sid)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        namespace = namespace or "/"
        if namespace not in self._namespaces:
            refused = NamespaceForbidden("this namespace is not served")
            await self._connect_error(eio_sid, namespace, refused)
        elif self.manager.sid_from_eio_sid(eio_sid, namespace) is not None:
            # python-socketio would answer a plain "Unable to connect"; the first
            # connection keeps its identity (a session never changes principal)
            refused = NamespaceForbidden("already connected to this namespace")
            await self._connect_error(eio_sid, namespace, refused)
        else:
            await super()._handle_connect(eio_sid, namespace, data)

    async def _connect_error(self, eio_sid: str, namespace: str, error: SsoioError) -> None:
        refused = refusal(error)
        await self._send_packet(
            eio_sid,
            self.packet_class(packet.CONNECT_ERROR, data=refused.error_args, namespace=namespace),
        )

    # -- messages and events -------------------------------------------------------------

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        # Every packet to a client (broadcasts included) passes here. python-engineio's
        # queue per session is unbounded: a client that stops reading would grow it until
        # the ping timeout, from every room it is in.
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and socket.queue.qsize() >= self._max_backlog:
            log.warning("realtime.backlog.exceeded packets=%d", socket.queue.qsize())
            await self.close_session(eio_sid)
            if isinstance(socket, EngineSocket):
                socket.discard()  # free it now, and the transport: the writer is stuck
            return
        await super()._send_eio_packet(eio_sid, eio_pkt)

    async def _handle_eio_message(self, eio_sid: str, data: object) -> None:
        if isinstance(data, bytes):
            return  # attachments of a binary event we refused; never buffered
        if not isinstance(data, str):
            # python-engineio JSON-decodes a message such as '4{}' or '4null' (Engine.IO
            # v4 messages are text): no Socket.IO packet
            log.warning("socketio.packet.malformed kind=%s", type(data).__name__)
            await self.close_session(eio_sid)
            return
        header = _HEADER.match(data)
        kind = header.group("type") if header else ""
        limit = self._max_connect if kind == "0" else self._max_payload
        if len(data) > limit or kind in ("5", "6"):
            too_large = len(data) > limit
            error = PayloadTooLarge() if too_large else InvalidPayload("binary events are refused")
            await self._refuse_packet(eio_sid, header, error)
            return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except Exception as exc:  # malformed packet: close, one line, no stack trace
            log.warning("socketio.packet.malformed kind=%s", type(exc).__name__)
            # never eio.disconnect (see close_session): over long-polling it waited for a
            # GET the closed session could no longer get, holding this POST, its task and
            # its memory until the node stopped, for any client without a credential
            await self.close_session(eio_sid)

    async def _refuse_packet(
        self, eio_sid: str, header: re.Match[str] | None, error: SsoioError
    ) -> None:
        if header is None:
            return
        namespace = (header.group("ns") or "/,")[:-1] or "/"
        if header.group("type") == "0":  # a CONNECT whose auth (token) is over the limit
            await self._connect_error(eio_sid, namespace, TokenMalformed("the token is too large"))
            return
        if header.group("type") not in ("2", "5") or not header.group("id"):
            return
        await self._ack(
            eio_sid, namespace, int(header.group("id")), {"ok": False, "error": error.as_dict()}
        )

    async def _handle_event(
        self, eio_sid: str, namespace: str | None, id: int | None, data: Any
    ) -> None:
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            return
        if not isinstance(data, list):
            # Socket.IO v5 "EVENT": the payload is an array; anything else is a malformed
            # packet, which closes the session as the others do (the protocol suite's
            # `42{}`); python-socketio hands it on
            log.warning("socketio.packet.malformed kind=%s", type(data).__name__)
            await self.close_session(eio_sid)
            return
        if not data or not isinstance(data[0], str):
            await self._ack(eio_sid, namespace, id, _error(InvalidPayload("an event needs a name")))
            return
        if data[0] in RESERVED_EVENTS:
            log.warning("socketio.event.reserved name=%s", data[0])
            await self._ack(eio_sid, namespace, id, _error(UnknownEvent()))
            return
        task = asyncio.create_task(self._run_event(eio_sid, sid, namespace, id, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_event(
        self, eio_sid: str, sid: str, namespace: str, id: int | None, data: list[Any]
    ) -> None:
        try:
            result = await self.gateway.handle_event(sid, data[0], data[1:])
        except Exception as exc:  # a handler bug must not reach the client as a trace
            log.error("event.failed name=%.100s kind=%s", data[0], type(exc).__name__)
            result = _error(SsoioError())  # internal_error
        if result is not None:
            await self._ack(eio_sid, namespace, id, result)

    async def _ack(
        self, eio_sid: str, namespace: str, id: int | None, body: dict[str, Any]
    ) -> None:
        if id is not None:
            await self._send_packet(
                eio_sid, self.packet_class(packet.ACK, namespace=namespace, id=id, data=[body])
            )


def _error(error: SsoioError) -> dict[str, Any]:
    return {"ok": False, "error": error.as_dict()}
