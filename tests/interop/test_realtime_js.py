"""The realtime server with the official JavaScript ``socket.io-client`` (run by node),
over both transports: the contract as browsers and node services see it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from ssoio.app import SsoServer

from .js_client import events, first, run_js_client
from .provider import NodeProvider, jwt_payload
from .ssoio_server import Client, OffsetClock, example_settings, running_ssoio

pytestmark = pytest.mark.interop

GENEROUS = {
    "connects_per_ip": {"rate": 1000, "burst": 1000},
    "failed_auth_per_ip": {"rate": 1000, "burst": 1000},
}
TRANSPORTS = ["websocket", "polling"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tokens(node_idp: NodeProvider) -> dict[str, dict[str, Any]]:
    users = ("alice", "bob", "carol", "dave", "erin")
    return {user: await node_idp.user_tokens(user) for user in users}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def node(node_idp: NodeProvider) -> AsyncIterator[tuple[str, SsoServer]]:
    async with running_ssoio(example_settings(node_idp, limits=GENEROUS)) as running:
        yield running


def script(url: str, token: str | None, transport: str, steps: list[dict[str, Any]],
           **options: Any) -> dict[str, Any]:  # fmt: skip
    auth = {"auth": {"token": token}} if token is not None else {}
    return {
        "url": url,
        "options": {"transports": [transport], **auth, **options},
        "steps": [{"op": "connect"}, *steps, {"op": "disconnect"}],
        "record": ["auth:expiring", "auth:revoked", "room:revoked", "chat:message"],
    }


def emit(event: str, payload: Any) -> dict[str, Any]:
    return {"op": "emit", "event": event, "args": [payload], "ack": True}


def acks(observations: list[dict[str, Any]]) -> list[Any]:
    return [o["args"][0] for o in observations if o["type"] == "ack"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_connect_refusals(
    node: tuple[str, SsoServer], tokens: dict[str, dict[str, Any]], transport: str
) -> None:
    alice = tokens["alice"]["access_token"]
    cases = {
        "token_missing": None,
        "token_malformed": "not-a-jwt",
        "signature_invalid": alice[:-8] + "AAAAAAAA",
        "claims_invalid": tokens["alice"]["id_token"],
    }
    for code, token in cases.items():
        seen = await run_js_client(script(node[0], token, transport, []))
        error = first(seen, "connect_error")
        assert error is not None, (code, seen)
        assert error["message"] == "unauthorized"
        assert error["data"]["code"] == code
        assert first(seen, "connect") is None
    forbidden = await run_js_client(script(node[0] + "/admin", alice, transport, []))
    error = first(forbidden, "connect_error")
    assert error is not None
    assert (error["message"], error["data"]["code"]) == ("forbidden", "namespace_forbidden")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_foreign_origin_never_connects(
    node: tuple[str, SsoServer], tokens: dict[str, dict[str, Any]], transport: str
) -> None:
    token = tokens["alice"]["access_token"]
    seen = await run_js_client(script(node[0], token, transport, [], origin="https://evil.example"))
    assert first(seen, "connect") is None
    assert first(seen, "connect_error") is not None
    allowed = await run_js_client(script(node[0], token, transport, [],
                                         origin="http://127.0.0.1:8000"))  # fmt: skip
    assert first(allowed, "connect") is not None


def expectations(user: str) -> list[tuple[str, Any, str]]:
    own = "globex" if user == "carol" else "acme"
    other = "acme" if own == "globex" else "globex"
    staff, chat = user in ("alice", "bob", "dave"), user != "dave"
    return [
        ("room:join", {"room": f"tenant:{own}:general"}, "ok"),
        ("room:join", {"room": f"tenant:{other}:general"}, "forbidden"),
        ("room:join", {"room": "staff"}, "ok" if staff else "forbidden"),
        ("chat:send", {"room": f"tenant:{own}:general", "text": "hi"},
         "ok" if chat else "forbidden"),
        ("broadcast_announcement", {"text": "x"}, "ok" if user == "alice" else "forbidden"),
        ("admin:kick", {"sub": "nobody"}, "ok" if user == "alice" else "forbidden"),
        ("presence:list", {"room": f"tenant:{own}:general"}, "ok"),
        ("chat:send", {"room": f"tenant:{own}:general", "text": "x", "from": "alice"},
         "invalid_payload"),
        ("orders:update", {}, "unknown_event"),
    ]  # fmt: skip


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("user", ["alice", "bob", "carol", "dave", "erin"])
async def test_reference_scenario(
    node: tuple[str, SsoServer], tokens: dict[str, dict[str, Any]], user: str, transport: str
) -> None:
    table = expectations(user)
    steps = [emit(event, payload) for event, payload, _ in table]
    seen = await run_js_client(script(node[0], tokens[user]["access_token"], transport, steps))
    answers = acks(seen)
    assert len(answers) == len(table), seen
    for (event, _payload, expected), answer in zip(table, answers, strict=True):
        got = "ok" if answer["ok"] else answer["error"]["code"]
        assert got == expected, (user, event, answer)


async def test_polling_js_client_and_websocket_python_client_chat(
    node: tuple[str, SsoServer], tokens: dict[str, dict[str, Any]]
) -> None:
    steps = [emit("room:join", {"room": "tenant:acme:js-polling"}),
             {"op": "wait", "event": "chat:message", "timeout_ms": 8000}]  # fmt: skip
    listener = asyncio.create_task(
        run_js_client(script(node[0], tokens["erin"]["access_token"], "polling", steps))
    )
    bob = Client(node[0])
    try:
        assert await bob.connect(tokens["bob"]["access_token"])
        assert (await bob.call("room:join", {"room": "tenant:acme:js-polling"}))["ok"]
        for _ in range(40):  # until erin (JS) is in the room: bounded
            presence = await bob.call("presence:list", {"room": "tenant:acme:js-polling"})
            if any(m["sub"] == "erin" for m in presence["members"]):
                break
            await asyncio.sleep(0.1)
        assert (await bob.call("chat:send", {"room": "tenant:acme:js-polling", "text": "hi"}))["ok"]
        seen = await asyncio.wait_for(listener, 30)
    finally:
        await bob.close()
    assert events(seen, "chat:message") == [
        [
            {
                "room": "tenant:acme:js-polling",
                "text": "hi",
                "from": {"sub": "bob", "username": "bob"},
            }
        ]
    ]


async def test_expiry_notice_refresh_and_disconnect(node_idp: NodeProvider) -> None:
    clock = OffsetClock()
    settings = example_settings(node_idp, limits=GENEROUS)
    async with running_ssoio(settings, clock=clock) as (url, _server):
        first_tokens = await node_idp.user_tokens("erin")
        token = first_tokens["access_token"]
        steps = [
            {"op": "wait", "event": "auth:expiring", "timeout_ms": 8000},
            {"op": "wait", "event": "auth:revoked", "timeout_ms": 8000},
            {"op": "wait_disconnect", "timeout_ms": 8000},
        ]
        run = asyncio.create_task(run_js_client({**script(url, token, "websocket", steps),
                                                 "timeout_ms": 30000}, timeout_s=40))  # fmt: skip
        await asyncio.sleep(1.0)
        clock.offset += jwt_payload(token)["exp"] - clock() - 59  # into the warning window
        await asyncio.sleep(1.5)
        clock.offset += 59 + 31  # past exp + leeway
        seen = await asyncio.wait_for(run, 40)
    assert events(seen, "auth:expiring")[0][0]["expires_in"] in (57, 58, 59, 60)
    assert events(seen, "auth:revoked") == [[{"code": "token_expired"}]]
    disconnect = first(seen, "disconnect")
    assert disconnect is not None
    assert disconnect["reason"] == "io server disconnect"
