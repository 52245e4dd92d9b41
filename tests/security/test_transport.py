"""Hostile transports: origin tricks (cross-site WebSocket hijacking), JSONP polling, bad
Engine.IO versions and sids, malformed and oversized packets, binary events announcing
millions of attachments, sessions that never authenticate, and slow consumers.

Every row names its source; every case ends with ``Node.assert_healthy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from ssoio.transport.engine import EngineSocket
from tests.security.harness import Node, running_node, settings_from
from tests.support.forge import SigningKey
from tests.support.raw_client import (
    ACK,
    CONNECT,
    PollingSession,
    RawSocket,
    SocketClosedError,
    encode_event,
    handshake_status,
    upgrade_websocket,
)
from tests.support.transport_path import (
    BACKLOG_LIMIT,
    BINARY_NOT_BUFFERED,
    HANDSHAKE_LIMITS,
    MALFORMED_PACKETS,
    PING_TIMEOUT,
    SESSION_INTERNALS,
    ssoio_only,
    transport_path,
)

SIBLING_ALLOWED = "https://chat.acme.example"
BACKLOG = 100  # realtime.max_backlog_packets


@pytest.fixture(scope="module")
async def node(rsa_key: SigningKey) -> AsyncIterator[Node]:
    settings = settings_from(
        server={"allowed_origins": [SIBLING_ALLOWED]}, realtime={"max_backlog_packets": BACKLOG}
    )
    async with running_node(settings, key=rsa_key) as running:
        yield running


def engineio_sessions(live: Node) -> int:
    return int(live.live_state()["engineio"])


# -- origins ------------------------------------------------------------------------------

# (source, Origin, extra headers, allowed)
ORIGINS: list[tuple[str, str, dict[str, str], bool]] = [
    ("RFC 6455 §10.2 / CSWSH: a foreign origin", "https://evil.example", {}, False),
    ("RFC 6454 §7.3: the opaque origin 'null' (sandboxed frame, file:)", "null", {}, False),
    ("README origins: a sibling subdomain", "https://evil-chat.acme.example", {}, False),
    ("README origins: the parent domain", "https://acme.example", {}, False),
    ("README origins: the allowed origin as a prefix of another host",
     "https://chat.acme.example.evil.example", {}, False),
    ("README origins: the public URL as a prefix of another host",
     "http://127.0.0.1:8000.evil.example", {}, False),
    ("README origins: a prefix of the public URL's port", "http://127.0.0.1:800", {}, False),
    ("RFC 6454 §6.2: a path after the origin", "http://127.0.0.1:8000/", {}, False),
    ("RFC 6454 §5: another scheme", "https://127.0.0.1:8000", {}, False),
    ("RFC 6454 §5: another host for the same machine", "http://localhost:8000", {}, False),
    ("RFC 6454 §5: an IPv4-mapped IPv6 host", "http://[::ffff:127.0.0.1]:8000", {}, False),
    ("RFC 6454 §6.2: the default port spelled out (browsers never send it)",
     "https://chat.acme.example:443", {}, False),
    ("RFC 6454 §7: a list of origins", "http://127.0.0.1:8000 https://evil.example", {},
     False),
    ("NOTES.md: X-Forwarded-Host spoofing with a matching forged Origin",
     "https://evil.example", {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
     False),
    ("RFC 7239: Forwarded host spoofing with a matching forged Origin",
     "https://evil.example", {"Forwarded": "host=evil.example;proto=https"}, False),
    ("README origins control: the public URL", "http://127.0.0.1:8000", {}, True),
    ("README origins control: an allowed origin", SIBLING_ALLOWED, {}, True),
    ("RFC 6454 §4 control: an allowed origin in upper case", SIBLING_ALLOWED.upper(), {}, True),
]  # fmt: skip


@pytest.mark.parametrize("transport", ["websocket", "polling"])
@pytest.mark.parametrize(("source", "origin", "headers", "allowed"), ORIGINS,
                         ids=[o[0] for o in ORIGINS])  # fmt: skip
async def test_origin(
    live: Node, transport: str, source: str, origin: str, headers: dict[str, str], allowed: bool
) -> None:
    if transport == "websocket":
        status = await handshake_status(live.url, origin=origin, headers=headers)
        assert (status == 101) is allowed, (source, status)
        if not allowed:
            assert status == 403, status
    else:
        async with httpx.AsyncClient() as http:
            response = await PollingSession.handshake(
                http, live.url, headers={"Origin": origin, **headers}
            )
            if response.status_code == 200:
                sid = json.loads(response.text[1:])["sid"]
                await PollingSession(http, live.url, sid, {"Origin": origin}).close()
        assert (response.status_code == 200) is allowed, (source, response.status_code)
        acao = response.headers.get("access-control-allow-origin")
        if allowed:
            assert acao == origin
        else:
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "origin_denied"
            assert acao is None
    if not allowed:
        assert engineio_sessions(live) == 1, "a refused origin left an Engine.IO session"
    await live.assert_healthy()


async def test_host_header_spoofing_with_a_matching_origin(live: Node) -> None:
    """NOTES.md: python-engineio's same-origin rule compares Origin with Host; ssoio never
    does (README origins)."""
    async with httpx.AsyncClient() as http:
        response = await PollingSession.handshake(
            http, live.url, headers={"Origin": "http://evil.example", "Host": "evil.example"}
        )
    assert response.status_code == 403
    await live.assert_healthy()


@pytest.mark.parametrize("order", ["allowed first", "foreign first"])
async def test_two_origin_headers(live: Node, order: str) -> None:
    """RFC 6454 §7.3: a user agent sends one Origin; two are an attack on the parser."""
    pair = [("Origin", "http://127.0.0.1:8000"), ("Origin", "https://evil.example")]
    async with httpx.AsyncClient() as http:
        response = await http.get(
            live.url + "/socket.io/?EIO=4&transport=polling",
            headers=pair if order == "allowed first" else pair[::-1],
        )
    assert 400 <= response.status_code < 500, response.text
    assert engineio_sessions(live) == 1
    await live.assert_healthy()


# -- JSONP, Engine.IO versions and session ids --------------------------------------------


async def test_jsonp_polling_is_refused(live: Node) -> None:
    """Engine.IO v3 JSONP: ``<script src=".../socket.io/?EIO=4&transport=polling&j=0">`` runs
    in a foreign page without an Origin header; no Socket.IO v5 client uses it."""
    async with httpx.AsyncClient() as http:
        response = await PollingSession.handshake(http, live.url, "EIO=4&transport=polling&j=0")
        if response.status_code == 200 and "sid" in response.text:
            sid = response.text.split('sid\\":\\"', 1)[1].split("\\", 1)[0]
            await http.post(f"{live.url}/socket.io/?EIO=4&transport=polling&sid={sid}&j=0",
                            data={"d": "1"})  # fmt: skip
    try:
        assert response.status_code == 400, response.text[:200]
        assert engineio_sessions(live) == 1
    finally:
        await live.force_clean()
        await live.assert_healthy()


# (source, query, method, body)
BAD_QUERIES: list[tuple[str, str, str]] = [
    ("Engine.IO v3 (EIO=3)", "EIO=3&transport=polling", "GET"),
    ("EIO not a number", "EIO=x&transport=polling", "GET"),
    ("a future EIO=5", "EIO=5&transport=polling", "GET"),
    ("EIO missing", "transport=polling", "GET"),
    ("EIO twice (4 and 3)", "EIO=4&EIO=3&transport=polling", "GET"),
    ("an unknown transport", "EIO=4&transport=flashsocket", "GET"),
    ("a JSONP index that is not a number", "EIO=4&transport=polling&j=abc", "GET"),
    ("an unknown sid (GET)", "EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA", "GET"),
    ("an unknown sid (POST)", "EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA", "POST"),
    # (under server.max_request_line_bytes; longer: 414, tests/security/test_http_edge.py)
    ("a sid of 5,000 characters", "EIO=4&transport=polling&sid=" + "A" * 5_000, "GET"),
    ("websocket without an upgrade", "EIO=4&transport=websocket", "GET"),
]


@pytest.mark.parametrize(("source", "query", "method"), BAD_QUERIES,
                         ids=[f"Engine.IO v4 handshake: {q[0]}" for q in BAD_QUERIES])  # fmt: skip
async def test_bad_polling_request(live: Node, source: str, query: str, method: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.request(method, f"{live.url}/socket.io/?{query}", content=b"1")
    assert response.status_code == 400, (source, response.status_code, response.text[:200])
    assert engineio_sessions(live) == 1
    await live.assert_healthy()


@pytest.mark.parametrize("query", ["EIO=3&transport=websocket", "EIO=x&transport=websocket",
                                   "EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA"],
                         ids=["Engine.IO v3 websocket", "EIO not a number (websocket)",
                              "an unknown sid (websocket)"])  # fmt: skip
async def test_bad_websocket_handshake(live: Node, query: str) -> None:
    assert await handshake_status(live.url, query=query) not in (101, -1)
    assert engineio_sessions(live) == 1
    await live.assert_healthy()


@pytest.mark.parametrize("how", ["polling GET", "polling POST close", "websocket"])
async def test_the_sentinels_sid_cannot_be_hijacked(live: Node, how: str) -> None:
    """Engine.IO v4: a sid upgraded to WebSocket accepts no more HTTP requests or
    a second WebSocket."""
    assert live.sentinel is not None
    sid = live.sentinel.eio_sid
    query = f"EIO=4&transport=polling&sid={sid}"
    if how == "websocket":
        status = await handshake_status(live.url, query=f"EIO=4&transport=websocket&sid={sid}")
        assert status != 101
    else:
        async with httpx.AsyncClient() as http:
            url = f"{live.url}/socket.io/?{query}"
            response = await (
                http.get(url) if how == "polling GET" else http.post(url, content=b"1")
            )
        assert response.status_code == 400, response.text
    await live.assert_healthy()


@pytest.mark.parametrize(("size", "status"), [(12_000, b"101"), (40_000, b"431")],
                         ids=["a header line under tokens.max_bytes + 1 KiB",
                              "a header line over tokens.max_bytes + 1 KiB"])  # fmt: skip
@ssoio_only(HANDSHAKE_LIMITS)
async def test_handshake_with_a_large_header_is_answered(
    live: Node, size: int, status: bytes
) -> None:
    """RFC 6455 §4.2.2: the server answers a handshake, accepting or refusing it (RFC 6585
    §5: 431); an Entra ID token with many groups easily makes an Authorization header over
    websockets' default 8 KiB."""
    host, port = live.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = ("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               f"Authorization: Bearer {'a' * size}\r\n\r\n")  # fmt: skip
    writer.write(request.encode())
    await writer.drain()
    try:
        status_line = await asyncio.wait_for(reader.readline(), 1.0)
    except TimeoutError:
        status_line = b""
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 " + status), status_line or "no answer"
    await live.assert_healthy()


# -- malformed and oversized packets ----------------------------------------------------------

# (source, frame, outcome): "closed" (the session ends), "ignored" (still works),
# or an ack code (ack id 7)
MALFORMED: list[tuple[str, str | bytes, str]] = [
    ("Socket.IO v5: bad JSON", '427["room:join",', "closed"),
    ("Socket.IO v5: an unknown packet type", "49[]", "closed"),
    ("Socket.IO v5: a packet type that is not a digit", "4x", "closed"),
    ("Socket.IO v5: CONNECT_ERROR sent by a client", '44{"message":"x"}', "closed"),
    ("Socket.IO v5: an empty packet (python-socketio decodes an EVENT without data)", "4",
     "closed"),
    ("Socket.IO v5: an ACK without an id", "43", "ignored"),
    ("Socket.IO v5: an ACK for an id never sent", "43123[{}]", "ignored"),
    ("Socket.IO v5: an EVENT without data (no array: malformed)", "42", "closed"),
    ("Socket.IO v5: attachments on a plain EVENT (read as a plain EVENT)",
     '421-7["room:join",{"room":"staff"}]', "forbidden"),
    ("Socket.IO v5: a 22-digit ack id", '429999999999999999999999["room:join",{"room":"staff"}]',
     "ignored"),
    ("Socket.IO v5: the default namespace spelled out", '42/,7["room:join",{"room":"staff"}]',
     "forbidden"),
    ("Socket.IO v5: 10,000 digits of ack id (over int()'s 4,300)", "42" + "9" * 10_000 + '["x"]',
     "closed"),
    ("Engine.IO v4: a NOOP from the client", "6", "ignored"),
    ("Engine.IO v4: an UPGRADE on an upgraded transport", "5", "ignored"),
    ("Engine.IO v4: an unsolicited PONG", "3", "ignored"),
    ("Engine.IO v4: a PING from the client", "2", "ignored"),
    ("Engine.IO v4: an OPEN from the client", '0{"sid":"x"}', "ignored"),
    ("Engine.IO v4: a CLOSE from the client", "1", "closed"),
    ("Engine.IO v4: a message that is a JSON object (python-engineio decodes it)", "4{}",
     "closed"),
    ("Engine.IO v4: a message that is JSON null", "4null", "closed"),
    ("Engine.IO v4: a message that is a JSON list", '4[2,"x"]', "closed"),
    ("Engine.IO v4: a message that is a JSON string of a packet (decoded, then handled)",
     '4"27[\\"room:join\\",{\\"room\\":\\"staff\\"}]"', "forbidden"),
    ("Engine.IO v4: a binary frame without a binary event", b"\x00\x01" * 100, "ignored"),
]  # fmt: skip


async def outcome_of(live: Node, socket: RawSocket, sid: str) -> str:
    """closed, or the ack code for id 7, or ignored (the connection still answers).

    A follow-up event with an ack comes after the frame under test: by its answer the frame
    has been handled (python-engineio reads a WebSocket in order)."""
    for _ in range(4):  # a frame that ends the session does so at once
        if live.server.gateway.connections.get(sid) is None:
            break
        await asyncio.sleep(0.005)
    answer: Any = None
    if live.server.gateway.connections.get(sid) is not None:
        with contextlib.suppress(SocketClosedError):
            answer = await socket.call("room:join", {"room": "tenant:acme:general"}, timeout_s=1)
    ack = await socket.expect(lambda p: p.type == ACK and p.id == 7, 0.05)
    if ack is not None:
        return str(ack.data[0]["error"]["code"]) if not ack.data[0]["ok"] else "ok"
    if answer is None or live.server.gateway.connections.get(sid) is None:
        return "closed"
    return "ignored" if answer == {"ok": True, "room": "tenant:acme:general"} else repr(answer)


@pytest.mark.parametrize(("source", "frame", "outcome"), MALFORMED, ids=[m[0] for m in MALFORMED])
@ssoio_only(MALFORMED_PACKETS)
async def test_malformed_packet(live: Node, source: str, frame: str | bytes, outcome: str) -> None:
    socket, sid = await live.client("erin")
    await socket.send(frame)
    assert await outcome_of(live, socket, sid) == outcome, source
    await live.assert_healthy()


@pytest.mark.parametrize("frame", ["x", "", "{}", "\u00e9", "7", "9[]"],
                         ids=["Engine.IO v4: a packet type that is not a digit",
                              "Engine.IO v4: an empty text frame",
                              "Engine.IO v4: JSON without a packet type",
                              "Engine.IO v4: a non-ASCII first character",
                              "Engine.IO v4: an unknown packet type (7)",
                              "Engine.IO v4: an unknown packet type (9)"])  # fmt: skip
async def test_frame_that_is_no_engineio_packet(live: Node, frame: str) -> None:
    """README input bounds: malformed packets close the session with one log line, never a
    stack trace."""
    socket, sid = await live.client("erin")
    await socket.send(frame)
    await socket.wait_closed(0.5)
    try:
        assert live.server.gateway.connections.get(sid) is None, "the session was left behind"
        await live.assert_healthy()
    finally:
        await live.force_clean()


@pytest.mark.parametrize(("size", "outcome"), [(17_000, "payload_too_large"), (70_000, "closed")],
                         ids=["README: an event over max_payload_bytes",
                              "README: a message over the transport limit"])  # fmt: skip
async def test_oversized_event(live: Node, size: int, outcome: str) -> None:
    socket, sid = await live.client("erin")
    text = "x" * size
    await socket.send('427["chat:send",' + json.dumps({"room": "tenant:acme:general",
                                                       "text": text}) + "]")  # fmt: skip
    assert await outcome_of(live, socket, sid) == outcome
    await live.assert_healthy()


@pytest.mark.parametrize("body", ["x", "", "4{}", "b!!!", "4hello\x1ex"],
                         ids=["Engine.IO v4 payload: no packet type", "an empty payload",
                              "a message that is JSON", "base64 that is not",
                              "a good packet, then a bad one"])  # fmt: skip
@ssoio_only(MALFORMED_PACKETS)
async def test_malformed_polling_post(live: Node, body: str) -> None:
    """README input bounds, long-polling: a payload that is no Engine.IO packet is answered
    4xx or ends the session; no stack trace, nothing left behind."""
    async with httpx.AsyncClient() as http:
        session = await PollingSession.open(http, live.url)
        response = await session.post(body)
        assert response.status_code in (200, 400), response.status_code
        await session.close()
    await live.force_clean()
    await live.assert_healthy()


async def test_oversized_polling_post(live: Node) -> None:
    """README input bounds, long-polling: a POST over the transport limit is answered 4xx."""
    async with httpx.AsyncClient() as http:
        session = await PollingSession.open(http, live.url)
        stuck = live.server.sio.eio.sockets[session.sid]
        await session.post("40" + json.dumps({"token": live.token("erin")}))
        try:
            response = await session.post("42" + json.dumps(["x", "y" * 100_000]), timeout_s=1.5)
            assert 400 <= response.status_code < 500, response.status_code
        finally:
            # python-engineio's disconnect waits for a GET to drain the session's queue:
            # drain it here, so the stuck request ends with this case
            while not stuck.queue.empty():
                stuck.queue.get_nowait()
                stuck.queue.task_done()
            await session.close()
            await live.assert_healthy()


# -- binary events ------------------------------------------------------------------------

PLACEHOLDER = {"_placeholder": True, "num": 0}
BINARY: list[tuple[str, str, int]] = [
    ("NOTES.md: a binary event with one attachment", "451-7", 1),
    ("NOTES.md: a binary event announcing 9,999,999,999 attachments", "459999999999-7", 60),
    ("NOTES.md: a binary ACK announcing 9,999,999,999 attachments", "469999999999-7", 60),
    ("NOTES.md: a binary event to another namespace", "451-/admin,7", 5),
]


@pytest.mark.parametrize(("source", "header", "frames"), BINARY, ids=[b[0] for b in BINARY])
@ssoio_only(BINARY_NOT_BUFFERED)
async def test_binary_events_are_not_buffered(
    live: Node, source: str, header: str, frames: int
) -> None:
    socket, _ = await live.client("erin")
    await socket.send(header + json.dumps(["chat:send", PLACEHOLDER]))
    for _ in range(frames):
        await socket.send(b"\0" * 60_000)
    assert live.live_state()["binary_buffers"] == 0
    answer = await socket.call("room:join", {"room": "tenant:acme:general"})
    assert answer == {"ok": True, "room": "tenant:acme:general"}, source
    refused = [p for p in socket.received if p.type == ACK and p.id == 7]
    if header.startswith("45") and "/admin" not in header:
        assert refused, "no answer to the refused binary event"
        assert refused[0].data[0]["error"]["code"] == "invalid_payload"
    assert live.live_state()["binary_buffers"] == 0
    await live.assert_healthy()


@ssoio_only(BINARY_NOT_BUFFERED)
async def test_binary_event_before_connect(live: Node) -> None:
    socket = await live.open()
    await socket.send("451-" + json.dumps(["x", PLACEHOLDER]))
    await socket.send(b"\0" * 1000)
    answer = await socket.connect({"token": live.token("erin")})
    assert answer is not None
    assert answer.type == 0, answer.raw
    assert live.live_state()["binary_buffers"] == 0
    await live.assert_healthy()


# -- sessions that never authenticate -----------------------------------------------------


async def expire_unauthenticated(live: Node) -> None:
    live.clock.advance(live.server.settings.realtime.unauthenticated_timeout_s + 0.1)
    await live.server.gateway.tick()


UNAUTHENTICATED: list[tuple[str, str]] = [
    ("README: a session that never sends CONNECT", "silent"),
    ("README: a session whose CONNECT was refused", "refused"),
    ("README: a session that left its namespace (DISCONNECT)", "left"),
    ("README: a session that only sends pings and noops", "chatty"),
]


@pytest.mark.parametrize(("source", "how"), UNAUTHENTICATED, ids=[u[0] for u in UNAUTHENTICATED])
async def test_unauthenticated_session_is_closed(live: Node, source: str, how: str) -> None:
    socket = await live.open()
    if how == "refused":
        answer = await socket.connect({"token": "x.y.z"})
        assert answer is not None
        assert answer.type == 4
    elif how == "left":
        answer = await socket.connect({"token": live.token("erin")})
        assert answer is not None
        assert answer.type == 0
        await socket.send("41")
        await asyncio.sleep(0.05)
    elif how == "chatty":
        for frame in ("6", "3", "6"):
            await socket.send(frame)
    assert live.server.gateway.unauthenticated_sessions == 1
    await expire_unauthenticated(live)
    assert live.server.gateway.unauthenticated_sessions == 0
    assert engineio_sessions(live) == 1, "the Engine.IO session outlived the timeout"
    await live.assert_healthy()


async def test_unauthenticated_websocket_is_closed(live: Node) -> None:
    """README: an unauthenticated session is closed after realtime.unauthenticated_timeout_s;
    its transport too, or the per-IP cap only bounds sessions, not sockets."""
    socket = await live.open()
    await expire_unauthenticated(live)
    try:
        assert await socket.wait_closed(1.0), "the WebSocket is still open"
    finally:
        await live.assert_healthy()


async def test_idle_polling_session_does_not_stall_the_timers(live: Node) -> None:
    """A long-polling client that never sends the next GET: python-engineio's disconnect
    would wait for one, and with it the timer task that enforces token expiry on the node.
    Closing it must not wait, and expiry must still be enforced afterwards."""
    async with httpx.AsyncClient() as http:
        session = await PollingSession.open(http, live.url)
        assert live.server.gateway.unauthenticated_sessions == 1
        await asyncio.wait_for(expire_unauthenticated(live), 1.0)
        assert engineio_sessions(live) == 1
        status, _ = await session.get()
        assert status == 400  # the session is gone
    _, sid = await live.client("erin", exp=int(live.clock()) + 5)
    live.clock.advance(5 + live.server.settings.issuers[0].leeway_s + 1)
    await asyncio.wait_for(live.server.gateway.tick(), 1.0)
    assert live.server.gateway.connections.get(sid) is None, "the expired token still served"
    await live.assert_healthy()


async def test_unauthenticated_sessions_per_ip_are_capped(live: Node) -> None:
    """README: each client IP may hold realtime.max_unauthenticated_per_ip (20) idle ones
    (older than realtime.handshake_window_s); over it, 429 rate_limited on both transports."""
    cap = live.server.settings.realtime.max_unauthenticated_per_ip
    for _ in range(cap):
        await live.open()
    assert await handshake_status(live.url) == 101, "a session in its handshake window"
    live.clock.advance(live.server.settings.realtime.handshake_window_s)
    # 429 where ssoio's uvicorn protocol serves the WebSocket handshake, else uvicorn's 403
    assert await handshake_status(live.url) == (429 if transport_path() == "ssoio" else 403)
    async with httpx.AsyncClient() as http:
        response = await PollingSession.handshake(http, live.url)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert live.server.gateway.unauthenticated_sessions == cap
    assert live.logs.audit("auth.session.refused")
    await expire_unauthenticated(live)
    assert live.server.gateway.unauthenticated_sessions == 0
    await live.assert_healthy()


# -- slow consumers -------------------------------------------------------------------------


async def broadcast_while(live: Node, go_on: Callable[[int], bool]) -> tuple[int, float]:
    """Broadcast 32 KB messages to tenant:acme while ``go_on(sent)``, the sentinel reading
    them as they come; (messages sent, the slowest emit in s). Asserts the sentinel got
    every one, in order."""
    assert live.sentinel is not None
    sentinel = live.sentinel
    blob = "x" * 32_000
    received: list[Any] = []
    sent, sending = 0, True
    all_in = asyncio.Event()

    async def read_all() -> None:
        def wanted(data: Any) -> bool:
            return bool(data["n"] >= len(received))

        while (data := await sentinel.wait_event("bulk", where=wanted)) is not None:
            received.append(data)
            if not sending and len(received) >= sent:
                break
        all_in.set()

    reader = asyncio.create_task(read_all())
    slowest = 0.0
    while go_on(sent):
        started = time.perf_counter()
        await live.server.emit("bulk", {"n": sent, "blob": blob}, room="tenant:acme")
        slowest = max(slowest, time.perf_counter() - started)
        sent += 1
        await asyncio.sleep(0)
    sending = False
    if len(received) < sent:
        await asyncio.wait_for(all_in.wait(), 10)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    numbers = [d["n"] for d in received]
    assert numbers == list(range(sent)), f"the sentinel stalled after {len(received)} messages"
    sentinel.received.clear()
    return sent, slowest


async def test_a_client_that_never_reads_does_not_stall_others(live: Node) -> None:
    """A slow consumer's backlog is its own: broadcasts keep flowing to everyone else.

    Messages are broadcast until the slow client's backlog shows on the server (its socket
    buffers are full), so the case cannot pass vacuously."""
    slow, _ = await live.client("erin")  # in tenant:acme with the sentinel; never reads again
    backlog = live.server.sio.eio.sockets[slow.eio_sid].queue
    _, slowest = await broadcast_while(
        live, lambda n: n < 1000 and (n < 50 or backlog.qsize() < 20)
    )
    assert backlog.qsize() >= 20, "the slow client never fell behind"
    assert slowest < 0.5, f"an emit blocked for {slowest:.2f} s"
    await live.assert_healthy()


@ssoio_only(SESSION_INTERNALS)
async def test_a_room_event_is_framed_once_and_keeps_its_place_among_acks(
    live: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssoio.transport.engine FRAMES: a room event's WebSocket frame is built once for all
    its recipients and written by the sender; every recipient still gets every event, in
    order, between the acks of its own events (what was queued goes out first)."""
    eio = live.server.sio.eio
    framed: list[str] = []
    frame_of = eio.frame_of

    def counting(pkt: Any, frame: Callable[[str], bytes]) -> bytes | None:
        def build(text: str) -> bytes:
            framed.append(text)
            return frame(text)

        return frame_of(pkt, build)  # type: ignore[no-any-return]

    monkeypatch.setattr(eio, "frame_of", counting)
    clients = [await live.client(user) for user in ("alice", "dave", "erin")]
    acks: list[list[int]] = [[] for _ in clients]
    for n in range(30):
        await live.server.emit("bulk", {"n": n}, room="tenant:acme")
        if n % 3 == 0:  # an acked event of its own between room events, for each client
            for (socket, _), ids in zip(clients, acks, strict=True):
                ids.append(await socket.emit("presence:list", {"room": "tenant:acme"}))
    for (socket, _), ids in zip(clients, acks, strict=True):
        last = await socket.wait_event("bulk", where=lambda data: data["n"] == 29)
        assert last is not None
        assert [data["n"] for data in socket.events("bulk")] == list(range(30))
        for ack_id in ids:
            answer = await socket.ack_for(ack_id)
            assert answer is not None
            assert answer["ok"] is True
    bulk = [text for text in framed if text.startswith('42["bulk"')]
    assert len(bulk) == 30, "a frame per recipient"  # four members: the sentinel too
    await live.assert_healthy()


@ssoio_only(BACKLOG_LIMIT)
async def test_a_client_that_never_reads_is_disconnected_at_the_backlog_limit(
    live: Node,
) -> None:
    """README: realtime.max_backlog_packets bounds what one client that does not read can
    hold on the server; its session is closed and its queue freed, nobody else notices."""
    slow, slow_sid = await live.client("erin")
    socket = live.server.sio.eio.sockets[slow.eio_sid]
    connections = live.server.gateway.connections
    await broadcast_while(
        live, lambda n: n < 20 * BACKLOG and connections.get(slow_sid) is not None
    )
    assert connections.get(slow_sid) is None, "never disconnected"
    assert socket.queue.qsize() <= 1, "the backlog was kept"
    assert any("realtime.backlog.exceeded" in text for text in live.logs.texts())
    await live.assert_healthy()


# -- what an idle session holds -------------------------------------------------------------


def _server_tasks() -> set[asyncio.Task[Any]]:
    """Tasks the node runs for its connections (uvicorn, python-engineio, ssoio)."""
    places = ("/uvicorn/", "/engineio/", "/socketio/", "/ssoio/")
    return {
        task
        for task in asyncio.all_tasks()
        if any(place in task.get_coro().cr_code.co_filename for place in places)  # type: ignore[union-attr]
    }


def _held_by(task: asyncio.Task[Any]) -> list[Any]:
    """The local variables of every frame a task is suspended in (packets opened)."""
    held: list[Any] = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            for value in frame.f_locals.values():
                held += [value, getattr(value, "data", None)]
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return held


@ssoio_only(SESSION_INTERNALS)
async def test_an_idle_session_holds_two_tasks_and_not_its_access_token(live: Node) -> None:
    """ssoio.transport.engine: python-engineio parked five tasks per idle WebSocket session
    (a reader and a writer, each wrapped by wait_for, and a ping task asleep) and kept the
    last message it handled (for an idle session, the CONNECT with the access token)."""
    before = _server_tasks()
    socket = await live.open()
    token = live.token("erin")
    answer = await socket.connect({"token": token})
    assert answer is not None
    assert answer.type == CONNECT
    await asyncio.sleep(0.05)
    added = _server_tasks() - before
    assert len(added) == 2, sorted(task.get_coro().cr_code.co_qualname for task in added)  # type: ignore[union-attr]
    session = live.server.sio.eio.sockets[socket.eio_sid]
    assert type(session) is EngineSocket
    held = [value for task in added for value in _held_by(task)]
    assert not any(isinstance(value, str) and token in value for value in held)
    await live.assert_healthy()


@ssoio_only(SESSION_INTERNALS)
async def test_a_closed_session_leaves_no_ping_timer(live: Node) -> None:
    """python-engineio left a closed session's ping task asleep for ping_interval."""
    socket, _ = await live.client("erin")
    session = live.server.sio.eio.sockets[socket.eio_sid]
    timer = session._ping_timer
    assert timer is not None, "no ping scheduled"
    await socket.close()
    await live.assert_healthy()
    assert timer.cancelled()
    assert session._ping_timer is None


async def _connected_polling(live: Node, http: httpx.AsyncClient) -> PollingSession:
    session = await PollingSession.open(http, live.url)
    await session.post("40" + json.dumps({"token": live.token("erin")}))
    status, frames = await session.get()
    assert status == 200
    assert frames[0].startswith("40{"), frames
    return session


async def test_a_polling_session_upgrades_to_websocket(live: Node) -> None:
    """Engine.IO v4 "Upgrade" (what browsers do): ping probe, pong probe, upgrade; the
    session then carries events over the WebSocket."""
    async with httpx.AsyncClient() as http:
        session = await _connected_polling(live, http)
        async with await upgrade_websocket(live.url, session.sid) as ws:
            await ws.send("2probe")
            assert await asyncio.wait_for(ws.recv(), 5) == "3probe"
            await ws.send("5")
            await ws.send(encode_event("no:such:event", {}, ack=7))
            ack = await asyncio.wait_for(ws.recv(), 5)
            if ack == "6":  # the NOOP that ends a pending poll, if none was pending
                ack = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(ack, str)
            assert ack.startswith("437["), ack
            assert json.loads(ack[3:])[0]["error"]["code"] == "unknown_event"
            assert live.server.sio.eio.sockets[session.sid].upgraded
    await live.assert_healthy()


@pytest.mark.parametrize("probe", ["2", "2nope", "5", "40{}"])
async def test_a_failed_upgrade_leaves_the_polling_session_working(live: Node, probe: str) -> None:
    """Engine.IO v4 "Upgrade": anything but the ping probe ends the WebSocket attempt; the
    long-polling transport carries on."""
    async with httpx.AsyncClient() as http:
        session = await _connected_polling(live, http)
        async with await upgrade_websocket(live.url, session.sid) as ws:
            await ws.send(probe)
            with contextlib.suppress(ConnectionClosed):
                assert await asyncio.wait_for(ws.recv(), 5) is None, "answered a bad probe"
        assert not live.server.sio.eio.sockets[session.sid].upgraded
        await session.post(encode_event("no:such:event", {}, ack=7))
        status, frames = await session.get()
        assert status == 200
        assert frames[0].startswith("437["), frames
        await session.close()
    await live.assert_healthy()


# -- heartbeats -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def fast_pings(rsa_key: SigningKey) -> AsyncIterator[Node]:
    settings = settings_from(realtime={"ping_interval_s": 0.2, "ping_timeout_s": 0.3})
    async with running_node(settings, key=rsa_key, sentinel=False) as running:
        yield running


@ssoio_only(PING_TIMEOUT)
async def test_a_client_that_stops_answering_pings_is_disconnected(fast_pings: Node) -> None:
    """Engine.IO v4 "Heartbeat": a session whose ping goes unanswered for pingTimeout ends
    (Engine.IO CLOSE, then the WebSocket closes); a WebSocket's reads wait without a
    timeout of their own, so this is EngineServer.sweep's doing."""
    socket, sid = await fast_pings.client("erin")
    frames: list[str | bytes] = []

    async def read_without_answering() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in socket.ws:
                frames.append(frame)

    started = time.monotonic()
    await asyncio.wait_for(read_without_answering(), 5)  # ends when the server closes
    assert "2" in frames, frames  # pinged
    assert frames[-1] == "1", frames  # Engine.IO CLOSE, before the WebSocket close
    assert time.monotonic() - started < 2.5  # ping_interval + ping_timeout + a sweep
    assert fast_pings.server.gateway.connections.get(sid) is None
    assert fast_pings.server.sio.eio.sockets.get(socket.eio_sid) is None


async def test_a_client_that_answers_pings_stays_connected(fast_pings: Node) -> None:
    socket, sid = await fast_pings.client("erin")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.5  # over ping_interval + ping_timeout several times
    while loop.time() < deadline:
        await socket.recv(0.05)  # answers every ping
    assert not socket.closed
    assert fast_pings.server.gateway.connections.get(sid) is not None
    answer = await socket.call("room:join", {"room": "tenant:acme:general"}, timeout_s=2)
    assert answer == {"ok": True, "room": "tenant:acme:general"}
    await socket.close()
