"""uvicorn's WebSocket protocol (websockets-sansio), lighter per connect and per message,
taking over a connection from ``ssoio.transport.protocols.HttpProtocol``.

uvicorn 0.54 parses a WebSocket handshake twice: httptools parses the request, uvicorn
writes it back out as bytes, and websockets parses those again (a generator step per
line, a regular expression per header) before checking it; the WebSocket protocol then
asks the socket for both addresses a second time, and the application's first message
(Engine.IO's OPEN packet) costs a write of its own after the 101 answer. Here:

* the request httptools parsed is handed over as it is (``Handshake``), under ssoio's HTTP
  limits (``ssoio.transport.edge``, every request) and the checks websockets' parser makes
  besides sizes (field characters, no body);
* a plain RFC 6455 §4.2.1 handshake is answered here, with the answer websockets gives it
  (``Handshake.plain_answer``, held to websockets' own by a differential test); anything
  else, and every handshake when permessage-deflate is configured, is answered by
  websockets' ``ServerProtocol.accept``;
* the application may send its first message with its accept (the ASGI extension
  ``FIRST_MESSAGE``): one write for both (~20 µs of CPU per write on loopback);
* the application may write a whole text frame, built once for every recipient of a
  room event, without going through the ASGI ``send`` chain (the ASGI extension
  ``FRAMES``), whenever ``send`` would write it at once (``write_frame``); the frames
  written so in one turn of the event loop go out in one write (a relayed event's copy
  for its sender and the sender's ack: one system call, not two).

Also: every handshake is answered (uvicorn 0.54 leaves one refused for its size
unanswered, the client waiting with its connection open), and neither the request (its
headers may carry the access token) nor the answer is kept for the connection's life.
"""

from __future__ import annotations

import asyncio
import binascii
import http
import logging
import re
import struct
from collections.abc import Generator
from typing import Any, NamedTuple
from urllib.parse import unquote

from uvicorn._types import ASGISendEvent, WebSocketScope
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.utils import accept_key

from ssoio.transport.edge import Lease
from ssoio.transport.engine import DENIAL_COMPLETES, FIRST_MESSAGE, FRAMES
from ssoio.transport.queues import Flag, PacketQueue

__all__ = ["Handshake", "RawHeaders", "WebSocketProtocol", "text_frame"]

RawHeaders = list[tuple[bytes, bytes]]


class _UpgradedProtocol(ServerProtocol):
    """websockets' server side of a connection whose request was parsed by httptools:
    it reads frames from the first byte (``ServerProtocol.parse`` reads a request first),
    and queues a first message right behind its 101 answer (FIRST_MESSAGE)."""

    first_message: bytes | None = None

    def parse(self) -> Generator[None]:
        yield from Protocol.parse(self)

    def send_response(self, response: Response) -> None:
        super().send_response(response)
        if response.status_code == 101 and self.first_message is not None:
            self.send_text(self.first_message)
        self.first_message = None


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, taking over from ``HttpProtocol`` (piece
    ``uvicorn.websocket`` of ``ssoio.transport.gates``: uvicorn 0.53.0-0.54.x, websockets
    17.x, fingerprinted). Upstream:
    docs/upstream/uvicorn-ws-handshake-refusal-unanswered.md,
    docs/upstream/uvicorn-ws-handshake-objects-kept.md; websockets' line limit is a
    process-wide constant ssoio leaves alone
    (docs/upstream/websockets-max-line-length-parameter.md).

    Also holds ~3 KiB less per connection: ssoio's ``PacketQueue`` and ``Flag`` instead of
    an ``asyncio.Queue`` and an ``asyncio.Event`` (``ssoio.transport.queues``)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # uvicorn 0.54's constructor (WebSocketsSansIOProtocol.__init__, fingerprinted in
        # gates.py), rewritten attribute by attribute to build each part once
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.root_path = config.root_path
        self.asgi_version = config.asgi_version
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers
        self.transport = None  # type: ignore[assignment]
        self.server = None
        self.client = None
        self.scheme = None  # type: ignore[assignment]
        self.queue = PacketQueue()  # type: ignore[assignment]
        self.handshake_initiated = False
        self.handshake_complete = False
        self.close_sent = False
        self.disconnected = False
        self.close_timer = None
        self.close_timeout = 10.0
        self.initial_response = None
        extensions = []
        if config.ws_per_message_deflate:
            extensions = [ServerPerMessageDeflateFactory(
                server_max_window_bits=12, client_max_window_bits=12,
                compress_settings={"memLevel": 5},
            )]  # fmt: skip
        self.conn = _UpgradedProtocol(
            extensions=extensions, max_size=config.ws_max_size, logger=self.logger
        )
        self.read_paused = False
        self.writable = Flag(is_set=True)  # type: ignore[assignment]
        self.ping_interval = config.ws_ping_interval
        self.ping_timeout = config.ws_ping_timeout
        self.ping_timer = None
        self.pong_timer = None
        self.pending_ping_payload = None
        self.ping_sent_at = 0.0
        self.last_ping_rtt = 0.0
        self.frames = []
        self.curr_msg_data_type = "bytes"
        self.lease: Lease | None = None  # this connection, counted per client address
        self._corked: list[bytes] | None = None  # frames of write_frame, not written yet

    def upgrade(
        self,
        transport: asyncio.Transport,
        server: tuple[str, int | None] | None,
        client: tuple[str, int] | None,
        scheme: str,
        handshake: Handshake,
        lease: Lease | None = None,
    ) -> None:
        """Take the connection over from the HTTP protocol that parsed its request."""
        self.lease = lease
        self.connections.add(self)
        self.transport = transport
        self.server = server
        self.client = client
        self.scheme = "wss" if scheme == "https" else "ws"
        refusal = handshake.refusal()
        if refusal is not None:
            self.handshake_initiated = self.handshake_complete = self.close_sent = True
            self.conn.handshake_exc = InvalidMessage(refusal.reason)
            text = f"{refusal.status.phrase}: {refusal.reason}\n"
            self._answer_and_close(self.conn.reject(refusal.status, text))
            return
        path = handshake.target.decode("ascii")
        # no extension to negotiate: a plain handshake is answered here (the answer
        # websockets would give, see handshake.plain_answer); anything else by websockets
        answer = None if self.conn.available_extensions else handshake.plain_answer()
        if answer is None:
            answer = self.conn.accept(Request(path, handshake.websockets_headers(),
                                              handshake.method, handshake.protocol))  # fmt: skip
        self._connect(path, handshake.headers, answer)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Reached when another HTTP protocol (uvicorn's own) hands over the request as
        # bytes: websockets parses them, as in uvicorn.
        super().connection_made(transport)
        extensions = self.conn.available_extensions
        self.conn = ServerProtocol(
            extensions=extensions, max_size=self.config.ws_max_size, logger=self.logger
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lease is not None:
            self.lease.release()
        scope = vars(self).get("scope")
        if scope is not None:
            scope["extensions"].pop(FRAMES, None)  # (its write_frame refers back to self)
        super().connection_lost(exc)

    def write_frame(self, frame: bytes) -> bool:
        """Write ``frame`` (a whole unmasked text frame, ``text_frame``) now, where uvicorn's
        ``send`` of a ``websocket.send`` would write its own at once: open, no close sent,
        writing not paused by flow control, no extension negotiated (permessage-deflate
        compresses per connection: no frame is the same for two). False: it must go
        through ``send``, which waits, compresses or refuses as uvicorn does."""
        if (
            self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
            or self.conn.extensions
            or self.transport.is_closing()
        ):
            return False
        if self._corked is None:
            self._corked = [frame]
            self.loop.call_soon(self._uncork)
        else:
            self._corked.append(frame)
        return True

    def _uncork(self) -> None:
        """Write the frames ``write_frame`` took in this turn of the loop, before anything
        else is written (``send``, ``data_received``: the order of the messages)."""
        frames, self._corked = self._corked, None
        if frames and not self.transport.is_closing():
            self.transport.write(b"".join(frames))

    def data_received(self, data: bytes) -> None:
        if self._corked:
            self._uncork()  # before uvicorn answers a ping or a close with a write
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None:
            # websockets refused the request line or headers (414, 431) without a word
            self._answer_and_close_pending()

    def handle_connect(self, event: Request) -> None:
        self._connect(event.path, _raw(event.headers), self.conn.accept(event))

    def _connect(self, path: str, headers: RawHeaders, answer: Response) -> None:
        # uvicorn keeps the request for the connection's life (its headers may carry the
        # access token, in Authorization); the application's scope has what it needs
        self.response = answer
        self.handshake_initiated = True
        if self.response.status_code != 101:
            self.handshake_complete = self.close_sent = True
            self._answer_and_close(self.response)
            return
        extensions: dict[str, dict[object, object]] = {
            "websocket.http.response": {},
            DENIAL_COMPLETES: {},
        }
        if isinstance(self.conn, _UpgradedProtocol):
            extensions[FIRST_MESSAGE] = {}
        if not self.conn.available_extensions:
            extensions[FRAMES] = {"write": self.write_frame, "frame": text_frame}
        raw_path, _, query = path.partition("?")
        subprotocols = [
            token.strip()
            for name, value in headers
            if name.lower() == b"sec-websocket-protocol"
            for token in value.decode("latin-1").split(",")
        ]
        self.scope: WebSocketScope = {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": self.root_path,
            "path": self.root_path + unquote(raw_path),
            "raw_path": self.root_path.encode("ascii") + raw_path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": extensions,
        }
        self.queue.put_nowait({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    async def send(self, message: ASGISendEvent) -> None:
        if self._corked:
            self._uncork()
        if message["type"] != "websocket.accept":
            await super().send(message)
            if message["type"] == "websocket.http.response.body" and not message.get(
                "more_body", False
            ):
                # a denial response answered the handshake (uvicorn 0.54 does not say so,
                # and logs an error when the application returns: DENIAL_COMPLETES)
                self.handshake_complete = True
            return
        first = message.get(FIRST_MESSAGE)
        if isinstance(first, str) and isinstance(self.conn, _UpgradedProtocol):
            self.conn.first_message = first.encode()  # written with the 101 answer
        await super().send(message)
        vars(self).pop("response", None)  # uvicorn keeps it for the connection's life

    def _answer_and_close(self, response: Response) -> None:
        self.conn.send_response(response)
        self._answer_and_close_pending()

    def _answer_and_close_pending(self) -> None:
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()


def text_frame(text: str) -> bytes:
    """A server's unfragmented, unmasked text frame of ``text`` (RFC 6455 §5.2: FIN and
    opcode 1, no mask bit, the payload length in 7, 7+16 or 7+64 bits; §5.6), the bytes
    websockets' ``Frame.serialize`` writes for ``send_text`` without extensions (held to
    it by a test): the same for every connection."""
    data = text.encode()
    size = len(data)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + data


class _Refusal(NamedTuple):
    """A handshake request websockets' own parser would not have accepted."""

    status: http.HTTPStatus
    reason: str


class Handshake(NamedTuple):
    """A WebSocket handshake request as httptools parsed it."""

    method: str
    target: bytes
    headers: RawHeaders  # names in lower case
    version: str  # "1.1"

    @property
    def protocol(self) -> str:
        return f"HTTP/{self.version}"

    def refusal(self) -> _Refusal | None:
        """What websockets' request parser would refuse besides sizes (``websockets.http11``:
        header characters; no body). Sizes (request line, header lines, number of headers)
        were bounded for every request by ``HttpProtocol``'s limits
        (``ssoio.transport.edge``) before the upgrade; websockets' own are process-wide
        constants ssoio does not patch."""
        values = b"".join(value for _, value in self.headers)
        if not self.target.isascii() or values.translate(None, _FIELD_VALUE_BYTES):
            return _Refusal(http.HTTPStatus.BAD_REQUEST, "the request is not valid")
        # RFC 9112 §6: a handshake has no body; websockets refuses one, and so does ssoio
        for name, value in self.headers:
            if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return _Refusal(http.HTTPStatus.BAD_REQUEST, "a handshake request has no body")
        return None

    def websockets_headers(self) -> Headers:
        headers = Headers()
        for name, value in self.headers:
            headers.set_insecure(name.decode("ascii"), value.decode("latin-1"))  # checked
        return headers

    def plain_answer(self) -> Response | None:
        """The 101 answer to a plain RFC 6455 §4.2.1 handshake, as websockets'
        ``ServerProtocol.accept`` gives it when no extension is configured: GET over
        HTTP/1.1, a Connection header naming "upgrade", one Upgrade header "websocket",
        one 16-byte Sec-WebSocket-Key, one Sec-WebSocket-Version 13, at most one Origin,
        no subprotocol offer (uvicorn offers none). None for anything else: websockets
        checks it, and answers it (refusals included). A strict subset of what websockets
        accepts, by construction and by test (tests/transport/test_protocols.py)."""
        if self.method != "GET" or self.version != "1.1":
            return None
        upgrade = key = version = None
        connection = origin = False
        for name, value in self.headers:
            if name == b"connection":
                tokens = [token.strip(b" \t") for token in value.split(b",")]
                if not all(_TOKEN.fullmatch(token) for token in tokens):
                    return None
                connection = connection or any(token.lower() == b"upgrade" for token in tokens)
            elif name in _ONCE:
                if name == b"upgrade" and upgrade is None:
                    upgrade = value
                elif name == b"sec-websocket-key" and key is None:
                    key = value
                elif name == b"sec-websocket-version" and version is None:
                    version = value
                elif name == b"origin" and not origin:
                    origin = True
                else:
                    return None  # repeated, or a subprotocol offer
        if not (connection and upgrade is not None and upgrade.lower() == b"websocket"):
            return None
        if key is None or version != b"13" or not _is_websocket_key(key):
            return None
        headers = Headers()
        headers.set_insecure("Date", "")  # uvicorn replaces it with the server's
        headers.set_insecure("Upgrade", "websocket")
        headers.set_insecure("Connection", "Upgrade")
        headers.set_insecure("Sec-WebSocket-Accept", accept_key(key.decode("ascii")))
        return Response(101, "Switching Protocols", headers)


def _is_websocket_key(key: bytes) -> bool:
    """RFC 6455 §4.2.1 item 5: base64 of 16 bytes."""
    try:
        return len(binascii.a2b_base64(key, strict_mode=True)) == 16
    except (binascii.Error, ValueError):
        return False


# RFC 9110 §5.5: field-value characters, as websockets' parser accepts them
_FIELD_VALUE_BYTES = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2
_ONCE = frozenset({b"upgrade", b"sec-websocket-key", b"sec-websocket-version", b"origin",
                   b"sec-websocket-protocol"})  # fmt: skip


def _raw(headers: Headers) -> RawHeaders:
    return [(name.encode("ascii"), value.encode("latin-1")) for name, value in headers.raw_items()]
