"""python-socketio adapted to the application (``ports.SocketApp``, the gateway): one
guarded dispatch path, no surprises. ``SocketServerBase`` holds what both transport paths
(``ssoio.transport.gates``) share; the stock path's class is
``ssoio.transport.stock.StockSocketServer``.

``SocketServer`` (the default, "ssoio" path) overrides private methods of python-socketio
5.18's ``AsyncServer`` (fingerprinted in ``gates.py``):

* Client events never reach python-socketio's handler lookup: ``_handle_event`` hands
  them to ``SocketApp.handle_event`` and sends its answer as the ack. A client-sent event
  named ``connect``/``disconnect`` (which python-socketio would run through the app's
  connect/disconnect handlers) is dropped (docs/upstream/python-socketio-reserved-event-names.md).
* Messages larger than ``realtime.max_payload_bytes`` get ``payload_too_large`` without
  being decoded; binary events are refused (python-socketio would buffer any number of
  announced attachments: docs/upstream/python-socketio-binary-attachments-unbounded.md);
  malformed packets close the session with one log line, never a stack trace.
* Unknown namespaces get ``namespace_forbidden`` instead of "Unable to connect".
* Every connect failure becomes a ``ConnectionRefusedError`` (any other exception would
  leave the client without CONNECT_ERROR and the sid registered:
  docs/upstream/python-socketio-connect-handler-exception.md).
* A client that stops reading is disconnected at ``realtime.max_backlog_packets``.
* Connection state recovery (``[recovery]``, socket.io 4.6+'s protocol): the CONNECT
  answer carries the ``pid`` (``_send_packet``); while a CONNECT is handled, packets to
  its Engine.IO session are held, so that a recovered client gets the CONNECT answer,
  then what it missed, then the live events of its rooms, without the ones replayed
  (``_send_eio_packet``). The stock path has no seam for either: ``recovery.enabled``
  needs ``server.transport = "ssoio"`` (a configuration error otherwise).
* Engine.IO sessions are counted per client IP until they authenticate
  (``SocketApp.session_opened``), and are ``ssoio.transport.engine`` sessions:
  python-engineio's, lighter.

"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

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
from ssoio.responses import refusal_body
from ssoio.transport.engine import EngineSocket
from ssoio.transport.packets import messages
from ssoio.transport.ports import SocketApp

__all__ = [
    "RESERVED_EVENTS",
    "SocketServer",
    "SocketServerBase",
    "client_address",
    "message_limit",
    "refusal",
]

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


App = TypeVar("App", bound=SocketApp)


def client_address(environ: dict[str, Any]) -> str:
    """The client's address: the ASGI scope's (uvicorn rewrote it from
    ``X-Forwarded-For`` when the peer is a trusted proxy). python-engineio's own
    ``translate_request`` sets ``REMOTE_ADDR`` to 127.0.0.1 for every client
    (docs/upstream/python-engineio-remote-addr.md), which would make every per-IP limit
    global; both paths correct ``environ["REMOTE_ADDR"]`` with this before the
    application sees it."""
    scope = environ.get("asgi.scope")
    client = scope.get("client") if isinstance(scope, dict) else None
    if client:
        return str(client[0])
    return str(environ.get("REMOTE_ADDR", ""))


class SocketServerBase(socketio.AsyncServer, Generic[App]):  # type: ignore[misc]
    """What both paths share: settings, the application, the gateway's ``Transport``
    (public python-socketio and python-engineio API only)."""

    def __init__(
        self,
        settings: Settings,
        app_factory: Callable[[SocketServerBase[App]], App],
        manager: Any = None,
        namespaces: Any = None,
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
            client_manager=manager or socketio.AsyncManager(),
            namespaces=namespaces or list(self._namespaces),
            cors_allowed_origins=self._origin_allowed,
            max_http_buffer_size=message_limit(settings),
            ping_interval=realtime.ping_interval_s,
            ping_timeout=realtime.ping_timeout_s,
            http_compression=False,
            logger=_library_logger("socketio.server"),
            engineio_logger=_library_logger("engineio.server"),
        )
        self.gateway: App = app_factory(self)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.pending_events = self._tasks  # in-flight client events (drained at shutdown)

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

    # -- the application, behind the wire contract -------------------------------------

    async def _admit(
        self, sid: str, eio_sid: str, namespace: str, environ: Any, auth: object
    ) -> None:
        """A CONNECT, handed to the application; every failure a ``ConnectionRefusedError``."""
        try:
            await self.gateway.connect(sid, eio_sid, namespace, environ, auth)
        except SsoioError as error:
            raise refusal(error) from None
        except Exception as exc:  # never leave a half-connected sid behind
            log.error("auth.connect.error kind=%s", type(exc).__name__)
            raise SocketRefused(
                "unauthorized", {"code": "idp_unavailable", "message": "try again later"}
            ) from None

    async def _dispatch(self, sid: str, name: str, args: list[Any]) -> dict[str, Any] | None:
        """A client event, handed to the application; a failure never reaches the client
        as a stack trace."""
        try:
            return await self.gateway.handle_event(sid, name, args)
        except Exception as exc:  # a handler bug must not reach the client as a trace
            log.error("event.failed name=%.100s kind=%s", name, type(exc).__name__)
            return refusal_body(SsoioError())  # internal_error


class SocketServer(SocketServerBase[App]):
    """The Socket.IO server of one ssoio node on the "ssoio" transport path; also the
    gateway's ``Transport``. Overrides python-socketio 5.18 ``AsyncServer``'s private
    methods (``gates.PIECES``, piece ``socketio.server``): see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        app_factory: Callable[[SocketServerBase[App]], App],
        manager: Any = None,
        engine_class: type[Any] | None = None,
    ) -> None:
        # read by python-socketio's constructor (_engineio_server_class)
        self._engine_class = engine_class
        self._recovery = settings.recovery.enabled
        self._held: dict[str, list[Any]] = {}  # eio_sid -> Engine.IO packets held
        super().__init__(settings, app_factory, manager)
        for namespace in self._namespaces:
            self.on("connect", self._connect_handler(namespace), namespace=namespace)
            self.on("disconnect", self._disconnect_handler(namespace), namespace=namespace)

    def _engineio_server_class(self) -> type[Any]:
        return self._engine_class or super()._engineio_server_class()

    # -- connect / disconnect -------------------------------------------------------------

    def _connect_handler(self, namespace: str) -> Callable[..., Coroutine[Any, Any, bool]]:
        async def on_connect(sid: str, environ: dict[str, Any], auth: object = None) -> bool:
            eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
            await self._admit(sid, eio_sid, namespace, environ, auth)
            return True

        return on_connect

    def _disconnect_handler(self, namespace: str) -> Callable[..., Coroutine[Any, Any, None]]:
        async def on_disconnect(sid: str, reason: object = None) -> None:
            eio_sid = self.manager.eio_sid_from_sid(sid, namespace)
            self.gateway.disconnected(sid, eio_sid, str(reason))

        return on_disconnect

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        environ["REMOTE_ADDR"] = client_address(environ)
        refused = session_refusal(self.gateway.session_opened(eio_sid, environ["REMOTE_ADDR"]))
        if refused is not None:
            return refused
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
        elif not self._recovery:
            await super()._handle_connect(eio_sid, namespace, data)
        else:
            await self._connect_holding(eio_sid, namespace, data)

    async def _connect_holding(self, eio_sid: str, namespace: str, data: Any) -> None:
        """python-socketio's CONNECT handling with the session's packets held until the
        answer and a recovered session's missed events are out (socket.io 4.6+ sends the
        missed packets right after the CONNECT answer: ``Socket`` constructor with a
        ``previousSession``)."""
        self._held.setdefault(eio_sid, [])
        fence = None
        try:
            await super()._handle_connect(eio_sid, namespace, data)
            sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
            if sid is not None and self.manager.is_connected(sid, namespace):
                replay, fence = self.gateway.take_replay(sid)
                for args in replay:
                    pkt = self.packet_class(packet.EVENT, namespace=namespace, data=args)
                    await self._send_packet(eio_sid, pkt)
        finally:
            await self._release(eio_sid, _offset_key(fence))

    async def _release(self, eio_sid: str, fence: tuple[int, int] | None) -> None:
        """Send the held packets in order, but the room events at or before ``fence``
        (the client got them in the replay)."""
        held = self._held.get(eio_sid, [])
        while held:
            eio_pkt = held.pop(0)
            offset = _offset_key(_packet_offset(eio_pkt.data)) if fence else None
            if offset is None or fence is None or offset > fence:
                await self._send_now(eio_sid, eio_pkt)
        self._held.pop(eio_sid, None)

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        # The CONNECT answer of socket.io 4.6+ with recovery on: {sid, pid}
        # (socket.io Socket._onconnect); the client keeps pid for its next CONNECT.
        if self._recovery and pkt.packet_type == packet.CONNECT and isinstance(pkt.data, dict):
            pid = self.gateway.pid_of(str(pkt.data.get("sid")))
            if pid is not None:
                pkt.data = {**pkt.data, "pid": pid}
        await super()._send_packet(eio_sid, pkt)

    async def _connect_error(self, eio_sid: str, namespace: str, error: SsoioError) -> None:
        refused = refusal(error)
        await self._send_packet(
            eio_sid,
            self.packet_class(packet.CONNECT_ERROR, data=refused.error_args, namespace=namespace),
        )

    # -- messages and events -------------------------------------------------------------

    async def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        held = self._held.get(eio_sid) if self._held else None
        if held is not None:  # its CONNECT is being handled (recovery: _connect_holding)
            if len(held) < self._max_backlog:  # bounded as the queue is
                held.append(eio_pkt)
            else:
                log.warning("realtime.backlog.exceeded packets=%d", len(held))
                await self.close_session(eio_sid)
            return
        await self._send_now(eio_sid, eio_pkt)

    def send_at_once(self, eio_sid: str, eio_pkt: Any) -> bool:
        """What ``_send_eio_packet`` does when the packet can be written at once
        (``EngineSocket.write_now``), without the calls down to it: a room event's
        fan-out (``ssoio.transport.manager.FanOut``) tries this for each recipient first.
        False: nothing was done, ``_send_eio_packet`` must be awaited."""
        if self._held and eio_sid in self._held:
            return False
        socket = self.eio.sockets.get(eio_sid)
        return isinstance(socket, EngineSocket) and socket.write_now(eio_pkt)

    async def _send_now(self, eio_sid: str, eio_pkt: Any) -> None:
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
            await self._ack(
                eio_sid, namespace, id, refusal_body(InvalidPayload("an event needs a name"))
            )
            return
        if data[0] in RESERVED_EVENTS:
            log.warning("socketio.event.reserved name=%s", data[0])
            await self._ack(eio_sid, namespace, id, refusal_body(UnknownEvent()))
            return
        task = asyncio.create_task(self._run_event(eio_sid, sid, namespace, id, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_event(
        self, eio_sid: str, sid: str, namespace: str, id: int | None, data: list[Any]
    ) -> None:
        result = await self._dispatch(sid, data[0], data[1:])
        if result is not None:
            await self._ack(eio_sid, namespace, id, result)

    async def _ack(
        self, eio_sid: str, namespace: str, id: int | None, body: dict[str, Any]
    ) -> None:
        if id is None:
            return
        for message in messages(self.packet_class, packet.ACK, namespace, [body], id):
            await self._send_eio_packet(eio_sid, message)


# the offset socket.io 4.6+ appends as an EVENT's last argument: `2["name",{...},"ms-seq"]`
_OFFSET_TAIL = re.compile(r',"(\d{1,15})-(\d{1,9})"\]$')


def _packet_offset(encoded: object) -> str | None:
    """The offset of an encoded Socket.IO EVENT (None: not a logged room event)."""
    if not isinstance(encoded, str) or not encoded.startswith("2"):
        return None
    match = _OFFSET_TAIL.search(encoded)
    return f"{match.group(1)}-{match.group(2)}" if match else None


def _offset_key(offset: str | None) -> tuple[int, int] | None:
    if offset is None:
        return None
    ms, _, seq = offset.partition("-")
    return (int(ms), int(seq))


def session_refusal(opened: bool | SsoioError) -> Any:
    """What python-engineio's ``connect`` handler returns for ``SocketApp.session_opened``'s
    answer: None opens the session; False refuses it (python-engineio's bare 401); a
    refusal body refuses it with that body (401, JSON; ``guard.TransportGuard`` gives it
    the code's own status)."""
    if opened is True:
        return None
    return False if opened is False else refusal_body(opened)
