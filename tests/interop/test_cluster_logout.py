"""Two ssoio nodes over a real redis-server, against the node OpenID Provider issuing access
tokens without ``sid``: a browser session's sockets on both nodes close on each kind of
logout, whichever node it reaches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from .cluster_nodes import Node, cluster_config
from .provider import NodeProvider, UserLogin, require_tool
from .redis_server import RedisServer
from .ssoio_server import Client
from .test_logout_everywhere import all_closed
from .web_login import Browser, free_port

pytestmark = pytest.mark.interop


@dataclass
class Pair:
    idp: NodeProvider
    a: Node
    b: Node


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pair(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pair]:
    require_tool("redis-server")
    workdir = tmp_path_factory.mktemp("cluster-logout")
    a, b = (Node(name, free_port(), workdir / f"{name}.log") for name in ("a", "b"))
    public_url = a.url  # node A stands in for the load balancer
    idp = await NodeProvider.start(
        redirect_uris=[f"{public_url}/auth/callback"], post_logout_redirect_uris=[f"{public_url}/"],
        backchannel_logout_uri=f"{public_url}/auth/backchannel-logout", access_token_sid=False,
    )  # fmt: skip
    redis = await RedisServer.start()
    # without iss and sid, the front-channel request ends the cookie's session (a provider
    # on the same site)
    changes = {"frontchannel_logout_session_required = true":
               "frontchannel_logout_session_required = false"}  # fmt: skip
    config = cluster_config(workdir / "ssoio.toml", idp, redis.url, public_url, changes)
    try:
        await asyncio.gather(a.start(config), b.start(config))
        yield Pair(idp, a, b)
    finally:
        await asyncio.gather(a.stop(), b.stop())
        await redis.stop()
        await idp.stop()
    for node in (a, b):
        assert "Traceback" not in node.log, node.log[-4000:]


async def sockets_on_both_nodes(pair: Pair, browser: Browser, user: str) -> list[Client]:
    """Sign in through node A; one socket by cookie on each node, one by the token
    handed off by node B on node A."""
    await browser.sign_in(user)
    token = (await browser.http.get(f"{pair.b.url}/auth/token")).json()["access_token"]
    sockets = [Client(pair.a.url), Client(pair.b.url), Client(pair.a.url)]
    for socket in sockets[:2]:  # (a new dict each time: the client takes the header out)
        cookie = {"Cookie": f"ssoio_session={browser.session_cookie}"}
        assert await socket.connect(None, headers=cookie), socket.connect_error
    assert await sockets[2].connect(token)
    return sockets


async def ended_everywhere(pair: Pair, browser: Browser, sockets: list[Client]) -> None:
    await all_closed(*sockets)
    for node in (pair.a, pair.b):
        assert (await browser.http.get(f"{node.url}/auth/me")).status_code == 401


@pytest.mark.parametrize(
    "kind", ["local at A", "local at B", "back-channel at A", "front-channel at A",
             "front-channel at B"],
)  # fmt: skip
async def test_every_kind_of_logout_closes_the_sessions_sockets_on_both_nodes(
    pair: Pair, kind: str, tmp_path: Path
) -> None:
    browser = Browser(pair.a.url)
    sockets: list[Client] = []
    try:
        sockets = await sockets_on_both_nodes(pair, browser, "erin")
        node = pair.a if kind.endswith("A") else pair.b
        if kind.startswith("local"):
            out = await browser.http.post(f"{node.url}/auth/logout",
                                          headers={"Origin": pair.a.url})  # fmt: skip
            assert out.status_code == 303
        elif kind.startswith("back-channel"):
            await pair.idp.end_session(UserLogin(tokens={}, cookies=browser.http.cookies))
        else:
            answer = await browser.http.get(f"{node.url}/auth/frontchannel-logout",
                                            headers={"Sec-Fetch-Site": "same-site"})  # fmt: skip
            assert answer.status_code == 200
        await ended_everywhere(pair, browser, sockets)
    finally:
        await browser.close()
        for socket in sockets:
            await socket.close()
