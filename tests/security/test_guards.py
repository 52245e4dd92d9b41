"""The origin and transport guards cover every request the Engine.IO server answers, and
the per-IP session cap cannot be filled from a foreign page or by one IPv6 host.

python-engineio's ASGI app serves ``/socket.io`` (no slash) as well as ``/socket.io/...``
(it adds the slash before matching); the guards matched only the latter, so JSONP,
foreign origins and junk payloads went through on the former.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from tests.security.harness import Node, running_node, settings_from
from tests.support.forge import SigningKey
from tests.support.raw_client import PollingSession

# Every shape of path python-engineio 4.x's ASGIApp hands to the Engine.IO server
# (engineio/async_drivers/asgi.py: _ensure_trailing_slash(path).startswith("/socket.io/"))
ENGINE_PATHS = ["/socket.io", "/socket.io/", "/socket.io//", "/socket.io/anything"]
FOREIGN = "https://evil.example"


def sessions(live: Node) -> int:
    return sum(not s.closed for s in live.server.sio.eio.sockets.values())


class TestEveryEnginePathIsGuarded:
    """Each path the engine answers gets the same checks as ``/socket.io/``."""

    @pytest.mark.parametrize("path", ENGINE_PATHS)
    async def test_jsonp_is_refused(self, live: Node, path: str) -> None:
        """Engine.IO v3 JSONP runs in any page through a <script> tag, without Origin."""
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{live.url}{path}?EIO=4&transport=polling&j=0")
        assert response.status_code == 400, response.text[:200]
        assert response.json()["error"]["code"] == "invalid_payload"
        assert sessions(live) == 1, "a JSONP handshake opened a session"
        await live.assert_healthy()

    @pytest.mark.parametrize("path", ENGINE_PATHS)
    async def test_a_foreign_origin_is_refused_on_polling(self, live: Node, path: str) -> None:
        async with httpx.AsyncClient() as http:
            response = await http.get(
                f"{live.url}{path}?EIO=4&transport=polling", headers={"Origin": FOREIGN}
            )
        assert response.status_code == 403, response.text[:200]
        assert response.json()["error"]["code"] == "origin_denied"
        assert sessions(live) == 1
        await live.assert_healthy()

    @pytest.mark.parametrize("path", ENGINE_PATHS)
    async def test_a_foreign_origin_is_refused_on_websocket(self, live: Node, path: str) -> None:
        status = await _ws_status(live, path, origin=FOREIGN)
        assert status == 403, status
        assert sessions(live) == 1
        await live.assert_healthy()

    @pytest.mark.parametrize("path", ENGINE_PATHS)
    async def test_a_junk_post_is_refused(self, live: Node, path: str) -> None:
        """python-engineio answered 200 and logged a stack trace for it."""
        async with httpx.AsyncClient() as http:
            session = await PollingSession.open(http, live.url)
            response = await http.post(
                f"{live.url}{path}?EIO=4&transport=polling&sid={session.sid}", content=b"junk"
            )
        assert response.status_code == 400, response.text[:200]
        assert response.json()["error"]["code"] == "invalid_payload"
        await live.force_clean()
        await live.assert_healthy()

    async def test_a_path_the_engine_does_not_serve_is_not_the_engine(self, live: Node) -> None:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{live.url}/socket.iox?EIO=4&transport=polling")
        assert response.status_code == 404
        await live.assert_healthy()


async def _ws_status(live: Node, path: str, origin: str) -> int:
    """The WebSocket handshake status at ``path`` (handshake_status assumes /socket.io/)."""
    url = live.url.replace("http://", "ws://", 1) + path + "?EIO=4&transport=websocket"
    try:
        ws = await connect(url, origin=Origin(origin), proxy=None, open_timeout=3)
    except InvalidStatus as refused:
        return int(refused.response.status_code)
    await ws.close()
    return 101


# -- browser requests no page can read (Fetch Metadata) -----------------------------------

# (source, Sec-Fetch-* headers) of Origin-less requests a foreign page makes a browser send
CROSS_SITE: list[tuple[str, dict[str, str]]] = [
    ("<img src>", {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image",
                   "Sec-Fetch-Site": "cross-site"}),
    ("<script src>", {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script",
                      "Sec-Fetch-Site": "cross-site"}),
    ("fetch(url, {mode: 'no-cors'})", {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "empty",
                                       "Sec-Fetch-Site": "cross-site"}),
    ("a link or window.open", {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
                               "Sec-Fetch-Site": "cross-site"}),
    ("<iframe src>", {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe",
                      "Sec-Fetch-Site": "cross-site"}),
    ("an old browser with Sec-Fetch-Dest only", {"Sec-Fetch-Dest": "image"}),
]  # fmt: skip

# Origin-less requests that must keep working
READABLE: list[tuple[str, dict[str, str]]] = [
    ("a non-browser client (no Sec-Fetch-*)", {}),
    ("the Socket.IO client on the same origin (XHR)",
     {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Sec-Fetch-Site": "same-origin"}),
    ("a same-origin fetch", {"Sec-Fetch-Mode": "same-origin", "Sec-Fetch-Dest": "empty",
                             "Sec-Fetch-Site": "same-origin"}),
]  # fmt: skip


@pytest.mark.parametrize(("source", "headers"), CROSS_SITE, ids=[c[0] for c in CROSS_SITE])
async def test_an_unreadable_browser_request_opens_no_session(
    live: Node, source: str, headers: dict[str, str]
) -> None:
    """W3C Fetch Metadata: an Origin-less handshake a foreign page caused is refused."""
    async with httpx.AsyncClient() as http:
        response = await PollingSession.handshake(http, live.url, headers=headers)
    assert response.status_code == 403, (source, response.status_code)
    assert response.json()["error"]["code"] == "origin_denied"
    assert sessions(live) == 1, "a session was opened"
    await live.assert_healthy()


@pytest.mark.parametrize(("source", "headers"), READABLE, ids=[r[0] for r in READABLE])
async def test_an_origin_less_client_still_connects(
    live: Node, source: str, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient() as http:
        session = await PollingSession.open(http, live.url, headers=headers)
        await session.post("40" + json.dumps({"token": live.token("erin")}))
        status, frames = await session.get()
        assert status == 200, source
        assert frames[0].startswith("40{"), frames
        await session.close()
    await live.assert_healthy()


async def test_a_foreign_page_cannot_fill_the_per_ip_cap(live: Node) -> None:
    """README realtime.max_unauthenticated_per_ip: <img> tags of any page visited from a
    NAT address could take every unauthenticated slot of that address, locking out its
    users. They open nothing now; a real client from the same address still gets in."""
    cap = live.server.settings.realtime.max_unauthenticated_per_ip
    image = dict(CROSS_SITE[0][1])
    async with httpx.AsyncClient() as http:
        statuses = [
            (await PollingSession.handshake(http, live.url, headers=image)).status_code
            for _ in range(cap + 5)
        ]
        assert set(statuses) == {403}, statuses
        assert live.server.gateway.unauthenticated_sessions == 0
        session = await PollingSession.open(http, live.url, headers=READABLE[1][1])
        await session.close()
    await live.assert_healthy()


# -- IPv6 clients are counted per /64 -------------------------------------------------------


@pytest.fixture(scope="module")
async def behind_proxy(rsa_key: SigningKey) -> AsyncIterator[Node]:
    """A node behind a trusted proxy on 127.0.0.1, so each request's X-Forwarded-For is
    its client address (uvicorn's proxy headers, as ``ssoio serve`` configures them)."""
    settings = settings_from(server={"trusted_proxies": ["127.0.0.1"]})
    async with running_node(settings, key=rsa_key, sentinel=False) as running:
        yield running


async def _handshake_from(http: httpx.AsyncClient, node: Node, address: str) -> int:
    response = await PollingSession.handshake(http, node.url, headers={"X-Forwarded-For": address})
    return response.status_code


async def test_an_ipv6_host_cannot_take_a_cap_per_address(behind_proxy: Node) -> None:
    """RFC 6177: a host picks any of its /64's 2^64 addresses; counted per address, one
    host had an unlimited number of unauthenticated sessions. Its /64 is one client."""
    node = behind_proxy
    cap = node.server.settings.realtime.max_unauthenticated_per_ip
    try:
        async with httpx.AsyncClient() as http:
            opened = [await _handshake_from(http, node, f"2001:db8:1:2::{i + 1:x}")
                      for i in range(cap)]  # fmt: skip
            assert set(opened) == {200}, opened
            # idle ones count: older than the handshake window
            node.clock.advance(node.server.settings.realtime.handshake_window_s)
            same_64 = await _handshake_from(http, node, "2001:db8:1:2:ffff::1")
            other_64 = await _handshake_from(http, node, "2001:db8:1:3::1")
            mapped = await _handshake_from(http, node, "::ffff:192.0.2.7")
            ipv4 = await _handshake_from(http, node, "192.0.2.7")
        assert 400 <= same_64 < 500, "a 21st session from the same /64 was opened"
        assert other_64 == 200, "another /64 is another client"
        assert (mapped, ipv4) == (200, 200)
        assert node.server.gateway.unauthenticated_sessions == cap + 3
    finally:
        node.clock.advance(node.server.settings.realtime.unauthenticated_timeout_s + 0.1)
        await node.server.gateway.tick()
    assert node.server.gateway.unauthenticated_sessions == 0
