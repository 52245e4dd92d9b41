"""Engine.IO transport checks python-engineio 4.x does not make, before it sees a request.

* JSONP polling (``j=``, Engine.IO v3) is refused with 400: a ``<script>`` tag of any
  site could run it without an Origin header, and no Socket.IO v5 client uses it.
* A long-polling POST over the transport limit is answered 413 at once and its session
  closed; python-engineio would close the session and leave the POST unanswered until
  a GET drained the session's queue.
* A long-polling POST of more packets than python-engineio decodes (16) is answered 400
  (``invalid_payload``) with one log line, and its session closed; python-engineio
  would log a stack trace, drop the packets and answer 200.
* On a WebSocket, a text frame that is no Engine.IO v4 packet (empty, or not starting
  with a packet type 0-6) closes it with 1002 (RFC 6455 §7.4.1) and one log line;
  python-engineio's reader would die with a stack trace and leave the session open.
  A long-polling POST carrying such a packet is answered 400 and its session closed;
  python-engineio would log a stack trace and answer "ok".
* A WebSocket message over the transport limit closes it with 1009 (RFC 6455 §7.4.1);
  python-engineio's reader would end with 1000, as if all were well.
* A WebSocket is closed as soon as the server sends the Engine.IO CLOSE packet, and
  after the client's CLOSE has been handed on; python-engineio would keep it open until
  ping_interval + ping_timeout (both transport paths: this is ASGI middleware).
* A handshake the application refuses with a code (``SocketApp.session_opened``: too many
  unauthenticated sessions from one address) is answered with that code's status and
  ssoio's error body (``rate_limited``: 429); python-engineio answers every refused
  handshake 401, and a refused WebSocket handshake with a close that uvicorn turns into a
  bare 403. The WebSocket answer uses the ASGI WebSocket Denial Response extension where
  ssoio's uvicorn protocol serves the handshake (the "ssoio" transport path).
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from engineio import payload
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ssoio.errors import InvalidPayload, PayloadTooLarge, RateLimited
from ssoio.responses import error_response
from ssoio.transport.engine import DENIAL_COMPLETES
from ssoio.transport.environ import ENGINE_PATH, serves_engine

__all__ = ["TransportGuard"]

log = logging.getLogger(__name__)

PACKET_TYPES = "0123456"  # Engine.IO v4: open, close, ping, pong, message, upgrade, noop
CLOSE_PACKET = "1"
SEPARATOR = b"\x1e"  # Engine.IO v4 long-polling: packets separated by a record separator
# python-engineio refuses a payload of more packets than this (4.x ``Payload``) with an
# exception its POST handler logs with a stack trace, then answers 200
MAX_PACKETS: int = payload.Payload.max_decode_packets


class TransportGuard:
    """ASGI middleware for the Engine.IO endpoint ``path`` (default ``/socket.io/``, and
    every path python-engineio serves under it: ``serves_engine``)."""

    def __init__(
        self,
        app: ASGIApp,
        max_http_bytes: int,
        close_session: Callable[[str], Awaitable[None]],
        path: str = ENGINE_PATH,
    ) -> None:
        self.app = app
        self.max_http_bytes = max_http_bytes
        self.close_session = close_session  # closes an Engine.IO session without waiting
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not serves_engine(str(scope.get("path", "")), self.path):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            query = _query(scope)
            if query.get("transport", [""])[0] != "websocket":
                # python-engineio takes a WebSocket without transport=websocket for a
                # polling handshake: a session nobody can reach, holding a slot
                await send({"type": "websocket.close", "code": 1008})
                return
            if not query.get("sid"):
                send = _refused_websocket(scope, send)
            frames = _WebSocketFrames(receive, send, self.max_http_bytes)
            await self.app(scope, frames.receive, frames.send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = _query(scope)
        refused = _refusal(scope, query)
        if refused is not None:
            await error_response(refused)(scope, receive, send)
        elif scope["method"] == "POST":
            await self._post(scope, receive, send, query.get("sid", [""])[0])
        elif scope["method"] == "GET" and not query.get("sid"):
            await self.app(scope, receive, _refused_polling(send))
        else:
            await self.app(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send, sid: str) -> None:
        too_long = _content_length(scope) > self.max_http_bytes
        body = None if too_long else await _read_body(receive, self.max_http_bytes)
        if body is None:
            await error_response(PayloadTooLarge())(scope, receive, send)
        elif not _is_payload(body):
            log.warning("engineio.payload.malformed length=%d", len(body))
            await error_response(InvalidPayload("not an Engine.IO payload"))(scope, receive, send)
        elif (count := body.count(SEPARATOR) + 1) > MAX_PACKETS:
            log.warning("engineio.payload.too_many_packets packets=%d", count)
            refused = InvalidPayload(f"more than {MAX_PACKETS} packets in one payload")
            await error_response(refused)(scope, receive, send)
        else:
            await self.app(scope, _replay(body, receive), _lower_ok(send))
            return
        if sid:
            await self.close_session(sid)


def _query(scope: Scope) -> dict[str, list[str]]:
    return parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))


# The refusals a handshake can get from the application, by the code in its body.
_HANDSHAKE_REFUSALS = {RateLimited.code: RateLimited}


def _handshake_refusal(body: object) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """(status, headers, body) of ssoio's answer for python-engineio's refusal ``body``
    (the application's refusal as its connect handler returned it), or None for another
    answer."""
    if not isinstance(body, bytes | str) or not body:
        return None
    try:
        parsed = json.loads(body)
        code = parsed["error"]["code"] if isinstance(parsed, dict) else None
    except (ValueError, KeyError, TypeError):
        return None
    error = _HANDSHAKE_REFUSALS.get(code) if isinstance(code, str) else None
    if error is None:
        return None
    answer = error_response(error(str(parsed["error"].get("message", ""))))
    return answer.status_code, answer.raw_headers, bytes(answer.body)


def _refused_polling(send: Send) -> Send:
    """A long-polling handshake python-engineio refused (401) with an application code
    gets that code's status; its start is held until the body shows which it is."""
    held: list[Message] = []

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 401:
            held.append(message)
            return
        if held and message["type"] == "http.response.body":
            answer = _handshake_refusal(message.get("body"))
            start = held.pop()
            if answer is not None:
                status, headers, body = answer
                start = {**start, "status": status, "headers": headers}
                message = {**message, "body": body}
            await send(start)
        await send(message)

    return sending


def _refused_websocket(scope: Scope, send: Send) -> Send:
    """A WebSocket handshake python-engineio refused with an application code (a close
    before accept, the code's body as reason) is answered over HTTP with that code's
    status and body (ASGI WebSocket Denial Response), where the server completes the
    handshake with it (``engine.DENIAL_COMPLETES``); elsewhere it stays the close, which
    uvicorn answers with a bare 403."""
    if DENIAL_COMPLETES not in (scope.get("extensions") or {}):
        return send
    accepted = False

    async def sending(message: Message) -> None:
        nonlocal accepted
        accepted = accepted or message["type"] == "websocket.accept"
        answer = None
        if message["type"] == "websocket.close" and not accepted:
            answer = _handshake_refusal(message.get("reason"))
        if answer is None:
            await send(message)
            return
        status, headers, body = answer
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": headers})  # fmt: skip
        await send({"type": "websocket.http.response.body", "body": body})

    return sending


def _refusal(scope: Scope, query: dict[str, list[str]]) -> InvalidPayload | None:
    """What the Engine.IO v4 protocol refuses with 400 and python-engineio 4.x serves:
    JSONP (``j=``), a request naming no transport (taken for polling), a method other
    than GET, POST and OPTIONS (CORS preflight); answered 200 and 405 there."""
    if "j" in query:
        return InvalidPayload("JSONP polling is not served")
    if query.get("transport", [""])[0] not in _TRANSPORTS:
        return InvalidPayload("unknown transport")
    if scope["method"] not in ("GET", "POST", "OPTIONS"):
        return InvalidPayload("method not served")
    return None


def _lower_ok(send: Send) -> Send:
    """python-engineio answers a long-polling POST ``OK``; the Engine.IO v4 protocol (and
    its reference server and test suite) ``ok``. Same length: the headers stand."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body") == b"OK":
            message = {**message, "body": b"ok"}
        await send(message)

    return sending


_TRANSPORTS = frozenset({"polling", "websocket"})


def _content_length(scope: Scope) -> int:
    for key, value in scope.get("headers", ()):
        if key.lower() == b"content-length":
            text = bytes(value).decode("latin-1").strip()
            return int(text) if text.isdigit() else 0  # the HTTP server refuses others
    return 0


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it grows over ``limit`` (chunked bodies too)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away; python-engineio sees it too
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _is_payload(body: bytes) -> bool:
    """Engine.IO v4 long-polling payload: packets separated by 0x1E, each a packet type
    0-6 with its data, or "b" and base64 (a binary message)."""
    try:
        packets = body.decode("utf-8").split("\x1e")
    except UnicodeDecodeError:
        return False
    return all(_is_packet(packet) for packet in packets)


def _is_packet(text: str) -> bool:
    if text.startswith("b"):
        try:
            binascii.a2b_base64(text[1:], strict_mode=True)
        except (binascii.Error, ValueError):
            return False
        return True
    return bool(text) and text[0] in PACKET_TYPES


def _size(message: Message) -> int:
    """The length of a received WebSocket message (characters of a text one)."""
    if message["type"] != "websocket.receive":
        return 0
    data = message.get("text") if message.get("text") is not None else message.get("bytes")
    return len(data) if isinstance(data, str | bytes) else 0


class _WebSocketFrames:
    """``receive``/``send`` of one Engine.IO WebSocket, with the checks above."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int) -> None:
        self._receive = receive
        self._send = send
        self.max_bytes = max_bytes
        self.closed = False
        self.client_closed = False  # the client sent Engine.IO CLOSE

    async def receive(self) -> Message:
        if self.closed:
            return {"type": "websocket.disconnect", "code": 1000}
        if self.client_closed:
            # Engine.IO v4 "close": the client's CLOSE ends the session, and the server
            # closes the transport. The CLOSE was handed on (the session ends); the read
            # after it closes the WebSocket, whichever Engine.IO session class runs:
            # python-engineio's own would wait for its read timeout, ping_interval +
            # ping_timeout (docs/upstream/python-engineio-client-close-websocket-open.md)
            await self._close(1000)
            return {"type": "websocket.disconnect", "code": 1000}
        message = await self._receive()
        if _size(message) > self.max_bytes:
            # RFC 6455 §7.4.1: 1009, a message too big to process (uvicorn's ws_max_size
            # refuses larger frames first when ssoio runs it; an embedding server may not)
            log.warning("engineio.frame.too_large length=%d", _size(message))
            await self._close(1009)
            return {"type": "websocket.disconnect", "code": 1009}
        text = message.get("text") if message["type"] == "websocket.receive" else None
        if isinstance(text, str) and not (
            text and text[0] in PACKET_TYPES
        ):  # no "b": binary frames
            log.warning("engineio.frame.malformed length=%d", len(text))
            await self._close(1002)
            return {"type": "websocket.disconnect", "code": 1002}
        self.client_closed = text == CLOSE_PACKET
        return message

    async def send(self, message: Message) -> None:
        if self.closed:
            return  # python-engineio still writes after its CLOSE (a PING); nobody reads it
        if message["type"] == "websocket.close":
            self.closed = True
        await self._send(message)
        if message["type"] == "websocket.send" and message.get("text") == CLOSE_PACKET:
            await self._close(1000)

    async def _close(self, code: int) -> None:
        if not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code})
