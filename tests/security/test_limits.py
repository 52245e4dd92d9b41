"""Limits keyed by what they protect (issue #20), against a live node with the shipped
limits: an office behind one address signs in at once; one person, one address sending
bad tokens, or one address opening idle handshakes is refused alone.

The node trusts 127.0.0.1 as a proxy, so each case speaks from addresses of its own
(``X-Forwarded-For``, as uvicorn's proxy headers give them to ``ssoio serve``); the fake
clock stands still unless a case moves it, so buckets never refill.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.security.harness import Node, example_raw, running_node, settings_from
from tests.support.forge import SigningKey
from tests.support.raw_client import (
    CONNECT,
    CONNECT_ERROR,
    PollingSession,
    RawSocket,
    handshake_status,
)
from tests.support.transport_path import transport_path

SHIPPED_LIMITS = example_raw()["limits"]
# A refused WebSocket handshake: 429 where ssoio's uvicorn protocol serves it; on the stock
# path uvicorn answers python-engineio's close with a bare 403 (guard.TransportGuard)
WEBSOCKET_REFUSED = 429 if transport_path() == "ssoio" else 403


@pytest.fixture(scope="module")
async def node(rsa_key: SigningKey) -> AsyncIterator[Node]:
    settings = settings_from(limits=SHIPPED_LIMITS, server={"trusted_proxies": ["127.0.0.1"]})
    async with running_node(settings, key=rsa_key) as running:
        yield running


def rss_kib() -> int:
    """This process's resident memory (the node runs in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def open_from(live: Node, address: str) -> RawSocket:
    return await live.open(headers={"X-Forwarded-For": address})


async def connect_as(socket: RawSocket, live: Node, sub: str, user: str = "carol") -> Any:
    answer = await socket.connect({"token": live.token(user, sub=sub)})
    assert answer is not None, "no answer to CONNECT"
    return answer


def code_of(answer: Any) -> str:
    if answer.type == CONNECT:
        return "ok"
    assert answer.type == CONNECT_ERROR, answer.raw
    return str(answer.data["data"]["code"])


async def expire_unauthenticated(live: Node) -> None:
    live.clock.advance(live.server.settings.realtime.unauthenticated_timeout_s + 0.1)
    await live.server.gateway.tick()


async def test_an_office_handshaking_at_once_signs_in(live: Node) -> None:
    """README limits: 300 people behind one address open their sessions at once, then
    authenticate: none is refused (the unauthenticated cap counts only idle sessions; the
    address's connect budget is given back by each authenticated connect)."""
    gate = asyncio.Semaphore(50)

    async def person(n: int) -> str:
        async with gate:
            socket = await open_from(live, "198.51.100.10")
        await asyncio.sleep(0)
        async with gate:
            return code_of(await connect_as(socket, live, f"office-{n}"))

    codes = await asyncio.wait_for(asyncio.gather(*(person(n) for n in range(300))), 60)
    assert codes.count("ok") == 300, {c: codes.count(c) for c in set(codes)}
    await live.assert_healthy()


async def test_one_user_opening_100_sockets_is_refused_past_the_cap_alone(live: Node) -> None:
    """README limits.sockets_per_user: the 21st socket of one person gets rate_limited; that
    person's first 20 stay connected and another person from the same address connects."""
    cap = live.server.settings.limits.sockets_per_user
    sockets = [await open_from(live, "198.51.100.20") for _ in range(100)]
    codes = [code_of(await connect_as(socket, live, "tabby")) for socket in sockets]
    assert codes[:cap] == ["ok"] * cap
    assert set(codes[cap:]) == {"rate_limited"}, codes
    assert len(live.server.gateway.connections.of_user(("primary", "tabby"))) == cap
    assert all(socket.is_open for socket in sockets[:cap])
    other = await open_from(live, "198.51.100.20")
    assert code_of(await connect_as(other, live, "neighbour")) == "ok"
    # past the socket cap; a person who keeps trying also meets the user's connect bucket
    limits = [r.get("limit") for r in live.logs.audit("auth.connect.refused")]
    assert limits[0] == "sockets_per_user"
    assert set(limits) <= {"sockets_per_user", "connects_per_user"}, limits
    await live.assert_healthy()


async def test_a_thousand_bad_tokens_are_throttled_while_another_address_connects(
    live: Node,
) -> None:
    """README limits.failed_auth_per_ip: 1,000 forged tokens from one address (10 sessions,
    100 CONNECTs each): only the failed-authentication burst is verified, the rest are
    refused rate_limited before any token work; a person from another address connects
    in the middle of it."""
    burst = live.server.settings.limits.failed_auth_per_ip.burst
    forged = live.token("carol")[:-6] + "AAAAAA"
    sockets = [await open_from(live, "198.51.100.30") for _ in range(10)]
    before, started = rss_kib(), time.perf_counter()

    async def hammer(socket: RawSocket) -> list[str]:
        return [code_of(await socket.connect({"token": forged})) for _ in range(100)]

    async def honest() -> str:
        await asyncio.sleep(0.05)
        socket = await open_from(live, "203.0.113.40")
        return code_of(await connect_as(socket, live, "elsewhere"))

    *batches, other = await asyncio.wait_for(
        asyncio.gather(*(hammer(s) for s in sockets), honest()), 60
    )
    codes = [code for batch in batches for code in batch]
    verified = codes.count("signature_invalid")
    print(f"bad tokens: {verified} verified, {codes.count('rate_limited')} rate_limited, "
          f"{time.perf_counter() - started:.2f} s, RSS {before} -> {rss_kib()} KiB")  # fmt: skip
    assert other == "ok"
    assert set(codes) == {"signature_invalid", "rate_limited"}
    assert burst <= verified <= burst + len(sockets), verified  # in flight when it ran out
    assert rss_kib() - before < 50_000
    await live.assert_healthy()


async def test_a_flood_of_idle_handshakes_is_capped(live: Node) -> None:
    """README realtime.max_handshakes_per_ip and max_unauthenticated_per_ip: 2,000
    handshakes from one address hold at most the handshake ceiling of sessions, the others
    get 429 rate_limited on both transports, memory stays bounded; once they are idle the
    address gets nothing more until they time out; another address is not affected."""
    settings = live.server.settings.realtime
    flood = {"X-Forwarded-For": "198.51.100.50"}
    gate = asyncio.Semaphore(50)
    before = rss_kib()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as http:

        async def handshake() -> httpx.Response:
            async with gate:
                return await PollingSession.handshake(http, live.url, headers=flood)

        answers = await asyncio.wait_for(asyncio.gather(*(handshake() for _ in range(2000))), 120)
        statuses = [a.status_code for a in answers]
        held = live.server.gateway.unauthenticated_sessions
        grown = rss_kib() - before
        print(f"idle flood: {statuses.count(200)} opened, {statuses.count(429)} refused, "
              f"{held} held, RSS +{grown} KiB")  # fmt: skip
        assert statuses.count(200) == settings.max_handshakes_per_ip
        assert statuses.count(429) == 2000 - settings.max_handshakes_per_ip
        assert await handshake_status(live.url, headers=flood) == WEBSOCKET_REFUSED
        assert not any("without completing handshake" in t for t in live.logs.texts())
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.json()["error"]["code"] == "rate_limited"
        assert held == settings.max_handshakes_per_ip
        assert grown < 100_000, f"{grown} KiB for {held} sessions"
        other = await PollingSession.handshake(
            http, live.url, headers={"X-Forwarded-For": "203.0.113.51"}
        )
        assert other.status_code == 200
        socket = await open_from(live, "203.0.113.52")
        assert code_of(await connect_as(socket, live, "unbothered")) == "ok"
        live.clock.advance(settings.handshake_window_s)
        idle = await PollingSession.handshake(http, live.url, headers=flood)
        assert idle.status_code == 429, "idle sessions over the cap, yet a new one opened"
        await expire_unauthenticated(live)
        assert live.server.gateway.unauthenticated_sessions <= 1
        again = await PollingSession.open(http, live.url, headers=flood)
        await again.close()
    await live.assert_healthy()
