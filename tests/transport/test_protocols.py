"""ssoio's uvicorn protocols, driven in process over a recording transport and compared
with uvicorn's own (httptools + websockets-sansio) on the same bytes; ssoio's answer to a
plain handshake held to websockets' own by a differential property test."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from ssoio.transport.engine import DENIAL_COMPLETES, FIRST_MESSAGE, FRAMES
from ssoio.transport.protocols import HttpProtocol
from ssoio.transport.websocket import Handshake, WebSocketProtocol

KEY_LINES = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")  # fmt: skip


def handshake(target: str = "/socket.io/?EIO=4&transport=websocket", extra: str = "") -> bytes:
    return (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{KEY_LINES}{extra}\r\n").encode()


class Transport(asyncio.Transport):
    """Records writes; enough of a socket transport for uvicorn's protocols."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False  # half-closed (RFC 9112 §9.6: the server drains, then closes)
        self.protocol: Any = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class App:
    """Accepts, sends ``first`` at once (unless None; with the accept when ``with_accept``
    and the server offers it), then waits for the client to go."""

    def __init__(self, first: str | None = "0{}", *, with_accept: bool = False) -> None:
        self.first = first
        self.with_accept = with_accept
        self.scopes: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        self.scopes.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        if self.with_accept and FIRST_MESSAGE in scope["extensions"]:
            await send({"type": "websocket.accept", FIRST_MESSAGE: self.first})
        else:
            await send({"type": "websocket.accept"})
            if self.first is not None:
                await send({"type": "websocket.send", "text": self.first})
        while (message := await receive())["type"] != "websocket.disconnect":
            self.received.append(message)


def connect(
    app: App, data: bytes, *, ours: bool = True, deflate: bool = False,
    http_class: type[HttpToolsProtocol] | None = None,
) -> Transport:  # fmt: skip
    """``data`` through ssoio's protocols (or uvicorn's own), with permessage-deflate
    configured or not (ssoio's default: not); ``http_class`` overrides the HTTP protocol."""
    config = uvicorn.Config(app, ws=WebSocketProtocol if ours else WebSocketsSansIOProtocol,
                            ws_per_message_deflate=deflate, ws_ping_interval=None,
                            log_config=None, lifespan="off")  # fmt: skip
    config.load()
    http_class = http_class or (HttpProtocol if ours else HttpToolsProtocol)
    protocol = http_class(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(data)
    return transport


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize("deflate", [False, True], ids=["answered by ssoio", "by websockets"])
async def test_the_application_sees_the_request_as_uvicorn_shows_it(deflate: bool) -> None:
    """The scope built from httptools' parse equals uvicorn's own, built from websockets'
    second parse (ASGI header names lower-cased, as the ASGI spec asks)."""
    extra = ("Origin: https://app.example\r\nSec-WebSocket-Protocol: a, b\r\n"
             "Sec-WebSocket-Protocol: c\r\nX-Forwarded-For: 10.0.0.1\r\n")  # fmt: skip
    scopes = []
    for ours in (True, False):
        app = App()
        connect(app, handshake("/socket.io/a%20b?EIO=4&x=%2F", extra), ours=ours, deflate=deflate)
        await settle()
        scopes.append(app.scopes[0])
    ours_scope, theirs = scopes
    theirs["headers"] = [(name.lower(), value) for name, value in theirs["headers"]]
    ours_extensions = {**theirs.pop("extensions"), FIRST_MESSAGE: {}, DENIAL_COMPLETES: {}}
    extensions = ours_scope.pop("extensions")
    frames = extensions.pop(FRAMES, None)
    assert (frames is None) is deflate  # frames built once only without an extension
    assert extensions == ours_extensions
    assert ours_scope == theirs
    assert ours_scope["path"] == "/socket.io/a b"
    assert ours_scope["query_string"] == b"EIO=4&x=%2F"
    assert ours_scope["subprotocols"] == ["a", "b", "c"]
    assert (b"origin", b"https://app.example") in ours_scope["headers"]


@pytest.mark.parametrize("deflate", [False, True], ids=["answered by ssoio", "by websockets"])
async def test_the_answer_and_the_first_message_are_written_as_by_uvicorn(deflate: bool) -> None:
    """A browser's handshake (it offers permessage-deflate): the same bytes as uvicorn's."""
    offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    written = []
    for ours in (True, False):
        transport = connect(App(first="0{}"), handshake(extra=offer), ours=ours, deflate=deflate)
        await settle()
        assert not transport.closed
        written.append([_without_date(data) for data in transport.writes])
    assert written[0] == written[1]
    assert written[0][0].startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    if not deflate:
        assert written[0][1] == b"\x81\x030{}"


def _without_date(data: bytes) -> bytes:
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"date:"))


@pytest.mark.parametrize("deflate", [False, True], ids=["answered by ssoio", "by websockets"])
async def test_a_first_message_goes_out_with_the_answer(deflate: bool) -> None:
    """FIRST_MESSAGE (Engine.IO's OPEN packet): one write per connect less."""
    transport = connect(App(first="0{}", with_accept=True), handshake(), deflate=deflate)
    await settle()
    assert len(transport.writes) == 1, transport.writes
    assert transport.writes[0].startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n\x81\x030{}")


async def test_frames_after_the_handshake_reach_the_application() -> None:
    app = App()
    transport = connect(app, handshake(extra="Authorization: Bearer secret-token\r\n"))
    await settle()
    protocol = transport.protocol
    # the handshake's request and answer are not kept (uvicorn keeps both, and the
    # request's headers may carry the access token)
    assert "request" not in vars(protocol)
    assert "response" not in vars(protocol)
    frame = Frame(Opcode.TEXT, b"40{}").serialize(mask=True, extensions=[])
    protocol.data_received(frame)
    await settle()
    assert app.received == [{"type": "websocket.receive", "text": "40{}"}]


REFUSED = [
    ("a request line over the limit (RFC 9110 §15.5.15)",
     handshake("/socket.io/?x=" + "a" * 20_000), b"414"),
    ("more than 128 headers", handshake(extra="".join(f"X-{n}: v\r\n" for n in range(130))),
     b"431"),
    ("a header line over the limit (RFC 6585 §5)", handshake(extra=f"X-Big: {'a' * 40_000}\r\n"),
     b"431"),
    ("a body (RFC 9112 §6)", handshake(extra="Content-Length: 5\r\n") + b"hello", b"400"),
    ("a chunked body", handshake(extra="Transfer-Encoding: chunked\r\n") + b"0\r\n\r\n", b"400"),
    ("no Sec-WebSocket-Key (RFC 6455 §4.2.1)",
     b"GET /socket.io/ HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Version: 13\r\n\r\n", b"400"),
    ("an unsupported WebSocket version (RFC 6455 §4.4)",
     handshake().replace(b"Version: 13", b"Version: 8"), b"400"),
    ("a POST (RFC 6455 §4.1: GET)", b"POST" + handshake()[3:], b"405"),
    ("HTTP/1.0 (RFC 6455 §4.1: HTTP/1.1; uvicorn's own path rewrote it to 1.1)",
     handshake().replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1), b"505"),
]  # fmt: skip


@pytest.mark.parametrize("deflate", [False, True], ids=["ssoio first", "websockets"])
@pytest.mark.parametrize(("request_bytes", "status"), [(r, s) for _, r, s in REFUSED],
                         ids=[name for name, _, _ in REFUSED])  # fmt: skip
async def test_a_refused_handshake_is_answered_and_closed(
    request_bytes: bytes, status: bytes, deflate: bool
) -> None:
    app = App()
    transport = connect(app, request_bytes, deflate=deflate)
    await settle()
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 " + status), transport.writes
    # closed; or, refused by the HTTP edge's limits (414, 431), half-closed while the rest
    # of the request is drained (ssoio.transport.protocols.HttpProtocol._linger)
    assert transport.closed or (transport.eof and status in (b"414", b"431"))
    assert app.scopes == []  # the application never saw it


async def test_the_websocket_protocol_also_runs_under_uvicorns_http_protocol() -> None:
    """Handed the request as bytes (uvicorn's own HTTP protocol), it parses them with
    websockets as uvicorn does, and still answers a refused handshake."""
    app = App()
    for data, status in ((handshake(), b"101"),
                         (handshake(extra=f"X-Big: {'a' * 20_000}\r\n"), b"431")):  # fmt: skip
        transport = connect(app, data, deflate=True, http_class=HttpToolsProtocol)
        await settle()
        assert b"".join(transport.writes).startswith(b"HTTP/1.1 " + status), transport.writes
    assert FIRST_MESSAGE not in app.scopes[0]["extensions"]  # not offered there


# -- the plain handshake answered by ssoio: never one websockets would not accept ------------

HEADER_CHOICES = {
    b"connection": [b"Upgrade", b"upgrade", b"keep-alive, Upgrade", b"keep-alive", b"Upgrade, ",
                    b"", b"up grade", b"Upgrade,keep-alive", b"UPGRADE", b"Upgrade;x"],
    b"upgrade": [b"websocket", b"WebSocket", b"websocket, h2c", b"h2c", b"", b"websocket/13",
                 b" websocket", b"websocket "],
    b"sec-websocket-key": [b"dGhlIHNhbXBsZSBub25jZQ==", b"dGhl", b"!" * 24,
                           b"dGhlIHNhbXBsZSBub25jZQ", b"AAAAAAAAAAAAAAAAAAAAAAAA",
                           b"dGhlIHNhbXBsZSBub25jZQ== "],
    b"sec-websocket-version": [b"13", b"8", b"13, 8", b"", b" 13"],
    b"origin": [b"https://a.example", b"null"],
    b"sec-websocket-protocol": [b"chat", b"a, b", b",,"],
    b"sec-websocket-extensions": [b"permessage-deflate; client_max_window_bits", b"x;;"],
    b"host": [b"127.0.0.1"],
}  # fmt: skip
VALID = [(b"connection", b"Upgrade"), (b"upgrade", b"websocket"),
         (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
         (b"sec-websocket-version", b"13")]  # fmt: skip


def _field(name: bytes, valid: bytes) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """One handshake field: mostly valid, else absent, another value, or repeated."""
    once = [[(name, value)] for value in HEADER_CHOICES[name]]
    twice = [[(name, valid), (name, valid)], [(name, valid), *once[-1]]]
    return st.sampled_from([[(name, valid)]] * 3 * len(once) + [[], *once, *twice])


OPTIONAL = [b"origin", b"sec-websocket-protocol", b"sec-websocket-extensions", b"host"]
OTHERS = st.sampled_from(OPTIONAL).flatmap(
    lambda name: st.tuples(st.just(name), st.sampled_from(HEADER_CHOICES[name]))
)
# the boundary: mostly valid handshakes, with a field missing, changed or repeated
HEADERS = st.tuples(*(_field(name, value) for name, value in VALID),
                    st.lists(OTHERS, max_size=3)).flatmap(
    lambda parts: st.permutations([field for part in parts for field in part])
)  # fmt: skip


@settings(max_examples=3000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@example("GET", "1.1", [(b"connection", b"keep-alive"), *VALID[1:]])
@example("GET", "1.1", VALID[1:])
@example("GET", "1.1", [VALID[0], (b"upgrade", b"websocket, h2c"), *VALID[2:]])
@example("GET", "1.1", [*VALID[:3], (b"sec-websocket-version", b"8")])
@example("GET", "1.1", [*VALID, (b"origin", b"null"), (b"origin", b"null")])
@example("GET", "1.1", [*VALID, (b"sec-websocket-protocol", b",,")])
@example("GET", "1.0", VALID)
@example("POST", "1.1", VALID)
@given(method=st.sampled_from(["GET", "GET", "GET", "POST", "get"]),
       version=st.sampled_from(["1.1", "1.1", "1.0"]), headers=HEADERS)  # fmt: skip
def test_a_plain_answer_is_the_answer_websockets_gives(
    method: str, version: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """RFC 6455 §4.2.1, differential: whenever ssoio answers a handshake itself, websockets'
    ``ServerProtocol.accept`` (no extension configured, as ssoio runs by default) accepts it
    with the same answer; whatever websockets refuses, ssoio leaves to it."""
    handshake = Handshake(method, b"/socket.io/", headers, version)
    assert handshake.refusal() is None
    ours = handshake.plain_answer()
    theirs = ServerProtocol(extensions=[]).accept(
        Request("/socket.io/", handshake.websockets_headers(), method, f"HTTP/{version}")
    )
    if ours is None:
        return
    assert theirs.status_code == 101, (headers, theirs.body)
    del theirs.headers["Date"], ours.headers["Date"]
    assert list(ours.headers.raw_items()) == list(theirs.headers.raw_items())


def test_the_common_handshakes_are_answered_by_ssoio() -> None:
    """The fast path is taken for what clients send (a browser, socket.io-client, websockets)."""
    deflate = (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits")
    for extra in ([], [(b"origin", b"https://app.example")], [deflate]):
        headers = [(b"host", b"h"), *VALID, *extra]
        answer = Handshake("GET", b"/socket.io/", headers, "1.1").plain_answer()
        assert answer is not None
        # RFC 6455 §1.3's worked example
        assert answer.headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
