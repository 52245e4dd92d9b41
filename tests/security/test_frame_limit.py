"""WebSocket frames are bounded by ``realtime.max_payload_bytes`` (and ``tokens.max_bytes``
for a CONNECT), not by uvicorn's default 16 MiB: larger ones are refused with 1009 as they
start, before they are buffered.

Before: uvicorn buffered frames of up to 16 MiB (10 anonymous sockets sending one each
grew the node by 230 MB), then python-engineio's reader dropped them and closed with 1000
(normal closure).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ssoio.app import SsoServer
from ssoio.transport.server import message_limit
from tests.interop.asgi_server import serve_asgi
from tests.interop.js_client import JsClientError
from tests.interop.node_scripts import run_json_script
from tests.interop.provider import INTEROP_DIR
from tests.security.harness import ISSUER, Node, running_node, settings_from
from tests.security.served import ServedNode, served_node
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey
from tests.support.raw_client import CONNECT, CONNECT_ERROR

OVERSIZED_CONNECT = INTEROP_DIR / "oversized_connect.mjs"
CLIENT_TIMEOUT_MS = 10_000  # the JS client's own connect timeout
BIG_FRAME = 15 * 1024 * 1024  # under uvicorn's default ws_max_size (16 MiB)
SOCKETS = 10


def connect_frame(token_chars: int) -> str:
    return '40{"token":"' + "a" * token_chars + '"}'


async def close_code_for(url: str, frame: str | bytes) -> int | None:
    """Open an Engine.IO WebSocket, send ``frame``; the close code the server sent."""
    ws_url = url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
    async with connect(ws_url, proxy=None, max_size=None, close_timeout=2) as ws:
        await asyncio.wait_for(ws.recv(), 3)  # OPEN
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame)
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(5):
                async for _ in ws:
                    pass
        received = ws.protocol.close_rcvd
        return None if received is None else int(received.code)


@pytest.mark.parametrize("frame", ["text", "binary"])
async def test_a_frame_over_the_limit_is_closed_with_1009(live: Node, frame: str) -> None:
    """RFC 6455 §7.4.1: 1009, a message too big to process (not 1000, normal closure)."""
    limit = live.server.sio.eio.max_http_buffer_size
    data: str | bytes = "4" + "x" * limit if frame == "text" else b"\0" * (limit + 1)
    assert await close_code_for(live.url, data) == 1009
    await live.assert_healthy()


async def test_the_frame_limit_follows_max_payload_bytes(rsa_key: SigningKey) -> None:
    """A CONNECT with a token of up to tokens.max_bytes still fits, whatever the limit on
    events (it was refused as "too large" above max_payload_bytes)."""
    settings = settings_from(realtime={"max_payload_bytes": 1024})
    assert message_limit(settings) == settings.tokens.max_bytes + 2048
    async with running_node(settings, key=rsa_key) as node:
        token = node.token("erin", padding="p" * 10_000)
        assert 12_000 < len(token) <= settings.tokens.max_bytes
        answer = await node.connect({"token": token})
        assert answer.type == CONNECT, answer.raw[:300]
        socket, _ = await node.client("erin")
        ack = await socket.call("chat:send", {"room": "tenant:acme:general", "text": "x" * 2000})
        assert ack["error"]["code"] == "payload_too_large", ack
        assert await close_code_for(node.url, "4" + "x" * message_limit(settings)) == 1009
        await node.assert_healthy()


async def test_a_connect_over_the_token_limit_gets_token_malformed(live: Node) -> None:
    """Under the frame limit, an oversized CONNECT is answered, not dropped."""
    token_chars = live.server.settings.tokens.max_bytes + 1024
    socket = await live.open()
    answer = await socket.connect(raw_auth=json.dumps({"token": "a" * token_chars}))
    assert answer is not None
    assert answer.type == CONNECT_ERROR
    assert answer.data["data"]["code"] == "token_malformed"
    await live.assert_healthy()


# -- the official JavaScript client -------------------------------------------------------


async def js_connect(url: str, token_chars: int, transports: list[str]) -> dict[str, Any]:
    """What socket.io-client reported first (oversized_connect.mjs)."""
    script = {"url": url, "transports": transports, "token_chars": token_chars,
              "timeout_ms": CLIENT_TIMEOUT_MS}  # fmt: skip
    observations = await run_json_script(
        OVERSIZED_CONNECT, script, timeout_s=CLIENT_TIMEOUT_MS / 1000 + 10, error=JsClientError
    )
    return observations[0]


@pytest.mark.interop
@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]],
                         ids=["websocket", "polling first"])  # fmt: skip
async def test_the_js_client_reports_an_oversized_connect_at_once(
    live: Node, transports: list[str]
) -> None:
    """A 300 KB token: the official client hears of it long before its connect timeout,
    as a connect_error (polling: the POST is refused) or as a close with 1009 (WebSocket:
    the frame is refused as it starts; no answer can follow the close)."""
    first = await js_connect(live.url, 300_000, transports)
    assert first["ms"] < CLIENT_TIMEOUT_MS / 2, first
    if transports == ["websocket"]:
        assert first == {**first, "type": "disconnect", "code": 1009}, first
    else:
        assert first["type"] == "connect_error", first
    await live.assert_healthy()


@pytest.mark.interop
async def test_the_js_client_gets_token_malformed_for_a_token_over_the_limit(
    live: Node,
) -> None:
    token_chars = live.server.settings.tokens.max_bytes + 4096  # under the frame limit
    first = await js_connect(live.url, token_chars, ["websocket"])
    assert first["type"] == "connect_error", first
    assert first["data"]["code"] == "token_malformed", first
    assert first["ms"] < CLIENT_TIMEOUT_MS / 2
    await live.assert_healthy()


# -- memory -------------------------------------------------------------------------------


@pytest.fixture
async def node_process() -> AsyncIterator[ServedNode]:
    async with served_node() as node:
        yield node


async def test_big_frames_from_anonymous_sockets_are_not_buffered(
    node_process: ServedNode,
) -> None:
    """Issue #14: 10 anonymous sockets, each sending a 15 MiB frame (under uvicorn's
    default limit), grew the node by ~230 MB. Now each is refused as it starts: the
    node's peak RSS barely moves and another client is still served."""
    node = node_process
    async with httpx.AsyncClient() as http:  # warm up: the first requests load code
        (await http.get(f"{node.url}/socket.io/?EIO=4&transport=polling")).raise_for_status()
    before = node.status_kib("VmHWM")
    frame = b"\0" * BIG_FRAME
    codes = await asyncio.gather(*(close_code_for(node.url, frame) for _ in range(SOCKETS)))
    grown_mb = (node.status_kib("VmHWM") - before) / 1024
    print(f"peak RSS growth: {grown_mb:.1f} MB for {SOCKETS} x {BIG_FRAME >> 20} MiB frames")
    assert codes == [1009] * SOCKETS, codes
    assert grown_mb < 40, f"the node grew by {grown_mb:.0f} MB"
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{node.url}/socket.io/?EIO=4&transport=polling")
    assert response.status_code == 200


@pytest.mark.parametrize("ws", ["websockets-sansio", "wsproto"])
async def test_an_embedding_server_without_the_frame_limit_still_closes_with_1009(
    rsa_key: SigningKey, ws: str
) -> None:
    """An application embedding ssoio under its own uvicorn (16 MiB frames): the transport
    guard refuses a message over the limit with 1009 after it arrives."""
    http = FakeIdp(ISSUER, [rsa_key]).client()
    try:
        server = SsoServer(settings_from(), clock=FakeClock(), http=http)
        limit = server.sio.eio.max_http_buffer_size
        async with serve_asgi(server.asgi_app, lifespan="on", ws=ws) as url:
            assert await close_code_for(url, "4" + "x" * limit) == 1009
    finally:
        await http.aclose()
