"""uvicorn's HTTP protocol (httptools), holding every request to the HTTP edge's bounds and
handing a WebSocket upgrade over as parsed.

``HttpProtocol`` holds every request, on every route, to the HTTP edge's bounds
(``ssoio.transport.edge``): head and body sizes, read deadlines, connections per client
address. uvicorn 0.54 with httptools has none of them: httptools (llhttp) keeps a header or
URL of any size, and a connection that sends nothing, or a byte now and then, stays open.
An upgrade request goes to ``ssoio.transport.websocket.WebSocketProtocol`` as httptools
parsed it, instead of as bytes for websockets to parse again.
"""

from __future__ import annotations

import asyncio
import http
from asyncio import TimerHandle
from typing import Any, ClassVar, cast

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_remote_addr

from ssoio.transport.edge import ConnectionLedger, HttpLimits, Lease, refusal
from ssoio.transport.websocket import Handshake, RawHeaders, WebSocketProtocol

__all__ = ["HttpProtocol"]


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under the HTTP edge's bounds (``ssoio.transport.edge``), handing
    an upgrade request to ``WebSocketProtocol`` as parsed instead of as bytes to parse
    again.

    Overrides uvicorn 0.54's ``HttpToolsProtocol`` (piece ``uvicorn.http`` of
    ``ssoio.transport.gates``: verified for uvicorn 0.53.0-0.54.x, fingerprinted):
    ``data_received`` as uvicorn's, counting the head's bytes and answering ssoio's
    refusals; the parser callbacks, each after uvicorn's own, to count and to move the read
    deadline; ``connection_made``/``connection_lost`` for the connection cap. Upstream:
    docs/upstream/uvicorn-httptools-request-head-limits.md.
    """

    limits: ClassVar[HttpLimits] = HttpLimits()
    ledger: ClassVar[ConnectionLedger | None] = None

    @classmethod
    def bound(cls, limits: HttpLimits, ledger: ConnectionLedger | None) -> type[HttpProtocol]:
        """This protocol for one listener: its ``limits``, its ``ledger`` of connections."""
        return cast(type[HttpProtocol], type(cls.__name__, (cls,),
                                             {"limits": limits, "ledger": ledger}))  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lease: Lease | None = None
        self._deadline: TimerHandle | None = None
        self._awaiting_head = True  # no request, or the last one read to its end
        self._head_begun = False
        self._head_bytes = 0  # received while awaiting a head (approximate: see data_received)
        self._head_size = 0  # parsed: URL, then names and values
        self._body_bytes = 0
        self._content_length = 0
        self._refusal: tuple[http.HTTPStatus, str] | None = None
        self._lingering: int | None = None  # refused: bytes still read and dropped

    # -- the connection ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self.ledger is not None:
            client = get_remote_addr(transport)
            self._lease = self.ledger.admit(client[0] if client else None)
            if self._lease is None:  # this address is at its cap: closed before a read
                self.transport = transport
                transport.close()
                return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._lease is not None:
            self._lease.release()
        if self.flow is None:  # refused in connection_made
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn 0.54's, plus: the bytes of a head not yet complete are counted (httptools
        # holds a header line or URL of any size). The count starts at the first read after
        # the last request's end, so it may miss the part of the next head that came in
        # the same read: at most one read (64-256 KiB), still bounded.
        if self.transport.is_closing():
            return
        if self._lingering is not None:
            self._lingering -= len(data)
            if self._lingering <= 0:
                # Enough dropped: stop reading (the kernel's buffers fill and the client's
                # writes stall) until the deadline closes. Closing now, with the client's
                # bytes unread, would reset the connection, and a reset can destroy the
                # answer in the client's receive queue before it was read.
                self.transport.pause_reading()
            return
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            if not self._head_bytes and self._lease is not None and not self._lease.begin_head():
                self.transport.close()  # too many heads in progress from this address
                return
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(*self._refusal)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._awaiting_head:
            if self._head_bytes > self.limits.head:
                self._refuse(_HEADERS_TOO_LARGE, "the request head is too large")
        elif self._deadline is None:  # a body is on its way (most come with their head)
            self._arm(self.limits.body_timeout_s)

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the WebSocket's own deadlines take over (Engine.IO's, ssoio's)
        lease, self._lease = self._lease, None
        ws_class: Any = self.ws_protocol_class
        if not issubclass(ws_class, WebSocketProtocol):
            if lease is not None:
                lease.release()  # uvicorn's own protocol would not release it
            super().handle_websocket_upgrade()
            return
        self.connections.discard(self)
        protocol = ws_class(config=self.config, server_state=self.server_state,
                            app_state=self.app_state)  # fmt: skip
        self.transport.set_protocol(protocol)
        headers = cast(RawHeaders, self.scope["headers"])  # httptools' parse: a list
        protocol.upgrade(self.transport, self.server, self.client, self.scheme,
                         Handshake(self.scope["method"], self.url, headers,
                                    self.scope["http_version"]), lease)  # fmt: skip

    # -- parser callbacks, each after uvicorn's own -------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        self._head_size = self._body_bytes = self._content_length = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_size += len(url)
        if len(self.url) > self.limits.request_line:
            self._stop(http.HTTPStatus.REQUEST_URI_TOO_LONG, "the request line is too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        line = len(name) + len(value) + 2  # "name: value", as websockets counts a line
        self._head_size += line + 2
        if len(self.headers) > self.limits.headers:
            self._stop(_HEADERS_TOO_LARGE, "too many headers")
        if line > self.limits.header_line:
            self._stop(_HEADERS_TOO_LARGE, "a header line is too long")
        if self._head_size > self.limits.head:
            self._stop(_HEADERS_TOO_LARGE, "the request head is too large")
        if self.headers[-1][0] == b"content-length" and value.isdigit():
            self._content_length = int(value)  # llhttp refused other forms

    def on_headers_complete(self) -> None:
        if self._content_length > self.limits.body:
            self._stop(_TOO_LARGE, f"the body is over {self.limits.body} bytes")
        self._awaiting_head = self._head_begun = False
        if self._lease is not None:
            self._lease.end_head()
        self._disarm()  # the body's deadline is armed if it does not come in this read
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.body:
            self._stop(_TOO_LARGE, f"the body is over {self.limits.body} bytes")
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_head, self._head_bytes = True, 0
        if self.cycle is None or self.cycle.response_complete:
            self._arm(self.limits.header_timeout_s)  # answered: the next head is awaited
        else:
            self._disarm()  # the application holds the request (long-polling: 25 s)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._awaiting_head and not self.transport.is_closing():
            self._arm(self.limits.header_timeout_s)

    # -- refusals -----------------------------------------------------------------------

    def _stop(self, status: http.HTTPStatus, reason: str) -> None:
        """Stop parsing (from a parser callback): ``data_received`` answers."""
        self._refusal = (status, reason)
        raise _Refused(reason)

    def _refuse(self, status: http.HTTPStatus, reason: str) -> None:
        """Answer ``status`` and close: the request cannot be read (any more)."""
        cycle = self.cycle
        in_flight = cycle is not None and not cycle.response_complete
        # a head refused while an earlier request is still being answered (pipelining)
        # cannot be answered in order; a body refused once its request was answered, neither
        silent = in_flight if self._awaiting_head else cycle.response_started
        if in_flight:
            cycle.disconnected = True  # the application's receive() gets http.disconnect
            cycle.message_event.set()
        if not silent:
            self.transport.write(refusal(status, reason, self.server_state.default_headers))
        self._linger()

    def _linger(self) -> None:
        """RFC 9112 §9.6: close in stages. Closed at once with the client's bytes unread,
        the connection would be reset, and the client's TCP stack could drop the answer
        before it was read; so half-close, read and drop what still comes (up to
        ``_LINGER_BYTES``, then stop reading), and close after ``_LINGER_S`` or when the
        client closes."""
        self._lingering = _LINGER_BYTES
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._disarm()
        self._deadline = self.loop.call_later(_LINGER_S, self.transport.close)
        self.flow.resume_reading()

    def _arm(self, delay_s: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay_s, self._late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        """The read deadline passed (RFC 9110 §15.5.9)."""
        self._deadline = None
        if self.transport.is_closing() or self._lingering is not None:
            return
        if not self._awaiting_head:
            self._refuse(http.HTTPStatus.REQUEST_TIMEOUT, "the request body took too long")
        elif self._head_begun or self._head_bytes:
            self._refuse(http.HTTPStatus.REQUEST_TIMEOUT, "the request head took too long")
        else:
            self.transport.close()  # nothing was asked: an idle connection, closed quietly


class _Refused(Exception):
    """Raised in a parser callback to stop httptools (which wraps it)."""


_LINGER_S = 2.0
_LINGER_BYTES = 1024 * 1024
_HEADERS_TOO_LARGE = http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
_TOO_LARGE = http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE
