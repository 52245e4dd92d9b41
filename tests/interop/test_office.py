"""Nine o'clock at the office (issue #20): hundreds of distinct people behind one address
sign in at once against ``config/ssoio.example.toml`` as shipped (no limit raised), with
real access tokens from the node OpenID Provider (its test-only crowd, idp.mjs)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ssoio.app import SsoServer
from tests.support.raw_client import CONNECT, RawSocket

from .provider import NodeProvider
from .ssoio_server import example_settings, running_ssoio

pytestmark = pytest.mark.interop

PEOPLE = 600
CONCURRENCY = 50
DEADLINE_S = 30.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def office_node(node_idp: NodeProvider) -> AsyncIterator[tuple[str, SsoServer]]:
    settings = example_settings(node_idp)  # the shipped limits, untouched
    async with running_ssoio(settings) as running:
        yield running


async def test_600_people_behind_one_address_sign_in_at_once(
    node_idp: NodeProvider, office_node: tuple[str, SsoServer]
) -> None:
    """600 distinct valid users from 127.0.0.1 at concurrency 50, default configuration:
    all connect and send an event within 30 s, none refused (it was 31 of 600: the
    address's connect bucket and unauthenticated-session cap counted authenticated
    people)."""
    url, server = office_node
    tokens = await node_idp.crowd_tokens(PEOPLE)
    gate = asyncio.Semaphore(CONCURRENCY)
    sockets: list[RawSocket] = []
    refused: list[str] = []

    async def person(token: str) -> None:
        async with gate:
            socket = await RawSocket.open_session(url)
            sockets.append(socket)
            answer = await socket.connect({"token": token})
            if answer is None or answer.type != CONNECT:
                refused.append(answer.raw if answer is not None else "no answer")
                return
            ack = await socket.call("room:join", {"room": "tenant:acme:lobby"})
            if not (isinstance(ack, dict) and ack.get("ok")):
                refused.append(f"room:join {ack!r}")

    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(person(t) for t in tokens)), DEADLINE_S)
        took = time.perf_counter() - started
        print(f"office: {PEOPLE} people in {took:.1f} s, {len(refused)} refused")
        assert refused == [], refused[:5]
        assert len(server.gateway.connections) >= PEOPLE
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
