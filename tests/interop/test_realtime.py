"""The realtime server end to end: uvicorn on 127.0.0.1, real tokens from the node
OpenID Provider, python-socketio's client, and the example configuration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from ssoio.app import SsoServer
from tests.support.forge import SigningKey, forge

from .provider import NodeProvider, jwt_payload
from .ssoio_server import Client, OffsetClock, example_settings, running_ssoio

pytestmark = pytest.mark.interop

USERS = ("alice", "bob", "carol", "dave", "erin")
GENEROUS = {
    "connects_per_ip": {"rate": 1000, "burst": 1000},
    "failed_auth_per_ip": {"rate": 1000, "burst": 1000},
}
TENANT = {"alice": "acme", "bob": "acme", "carol": "globex", "dave": "acme", "erin": "acme"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tokens(node_idp: NodeProvider) -> dict[str, dict[str, Any]]:
    return {user: await node_idp.user_tokens(user) for user in USERS}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def node(node_idp: NodeProvider) -> AsyncIterator[tuple[str, SsoServer]]:
    # Every test client comes from 127.0.0.1: the per-IP connect limits would trip.
    # They have a test of their own below.
    async with running_ssoio(example_settings(node_idp, limits=GENEROUS)) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def connect(
    node: tuple[str, SsoServer], tokens: dict[str, dict[str, Any]]
) -> AsyncIterator[Any]:
    clients: list[Client] = []

    async def connect_as(user: str, transport: str = "websocket") -> Client:
        client = Client(node[0])
        clients.append(client)
        assert await client.connect(tokens[user]["access_token"], transport=transport), (
            client.connect_error
        )
        return client

    yield connect_as
    for client in clients:
        await client.close()


def ok(answer: Any) -> bool:
    assert isinstance(answer, dict), answer
    return bool(answer["ok"])


def code(answer: Any) -> str:
    assert isinstance(answer, dict), answer
    assert answer["ok"] is False, answer
    return str(answer["error"]["code"])


# -- the reference scenario, user by user ------------------------------------------------


def scenario() -> list[tuple[str, str, str, Any, str]]:
    """(user, event, payload, expected): every rule of the example policy, every user."""
    rows: list[tuple[str, str, str, Any, str]] = []
    for user in USERS:
        own, other = TENANT[user], "globex" if TENANT[user] == "acme" else "acme"
        staff = user in ("alice", "bob", "dave")
        rows += [
            (user, "join own tenant room", "room:join", {"room": f"tenant:{own}:general"}, "ok"),
            (user, "join other tenant room", "room:join", {"room": f"tenant:{other}:general"},
             "forbidden"),
            (user, "join staff", "room:join", {"room": "staff"}, "ok" if staff else "forbidden"),
            (user, "join another user's room", "room:join", {"room": "user:mallory"}, "forbidden"),
            (user, "join an uncovered room", "room:join", {"room": "lobby"}, "forbidden"),
            (user, "chat in own tenant", "chat:send",
             {"room": f"tenant:{own}:general", "text": "hi"},
             "forbidden" if user == "dave" else "ok"),
            (user, "chat in other tenant", "chat:send",
             {"room": f"tenant:{other}:general", "text": "hi"}, "forbidden"),
            (user, "announce", "broadcast_announcement", {"text": "x"},
             "ok" if user == "alice" else "forbidden"),
            (user, "kick", "admin:kick", {"sub": "nobody"},
             "ok" if user == "alice" else "forbidden"),
            (user, "presence of own room", "presence:list", {"room": f"tenant:{own}:general"},
             "ok"),
            (user, "presence of other room", "presence:list",
             {"room": f"tenant:{other}:general"}, "forbidden"),
            (user, "unknown event", "orders:update", {}, "unknown_event"),
        ]  # fmt: skip
    return rows


@pytest.mark.parametrize(("user", "what", "event", "payload", "expected"), scenario(),
                         ids=[f"{r[0]}-{r[1]}" for r in scenario()])  # fmt: skip
async def test_reference_scenario(
    connect: Any, user: str, what: str, event: str, payload: Any, expected: str
) -> None:
    client = await connect(user)
    answer = await client.call(event, payload)
    if expected == "ok":
        assert ok(answer), answer
    else:
        assert code(answer) == expected


async def test_chat_reaches_the_room_with_a_server_stamped_from(connect: Any) -> None:
    bob, erin, carol = (
        await connect("bob"),
        await connect("erin"),
        await connect("carol"),
    )
    for client in (bob, erin):
        assert ok(await client.call("room:join", {"room": "tenant:acme:general"}))
    assert ok(await bob.call("chat:send", {"room": "tenant:acme:general", "text": "hello"}))
    expected = {"room": "tenant:acme:general", "text": "hello",
                "from": {"sub": "bob", "username": "bob"}}  # fmt: skip
    assert await erin.wait_for("chat:message") == [expected]
    assert await bob.wait_for("chat:message") == [expected]
    forged = await bob.call("chat:send", {"room": "tenant:acme:general", "text": "x",
                                          "from": {"sub": "alice"}})  # fmt: skip
    assert code(forged) == "invalid_payload"
    await asyncio.sleep(0.2)
    assert carol.got("chat:message") == []
    assert len(erin.got("chat:message")) == 1


async def test_announcement_reaches_the_senders_tenant_only(connect: Any) -> None:
    alice, dave, carol = await connect("alice"), await connect("dave"), await connect("carol")
    assert ok(await alice.call("broadcast_announcement", {"text": "release at 5"}))
    expected = {"text": "release at 5", "from": {"sub": "alice", "username": "alice"}}
    assert await dave.wait_for("announcement") == [expected]
    await asyncio.sleep(0.2)
    assert carol.got("announcement") == []


async def test_presence_shows_emails_to_staff_only(connect: Any) -> None:
    alice, erin = await connect("alice"), await connect("erin")
    for client in (alice, erin):
        assert ok(await client.call("room:join", {"room": "tenant:acme:general"}))
    for_staff = await alice.call("presence:list", {"room": "tenant:acme:general"})
    for_erin = await erin.call("presence:list", {"room": "tenant:acme:general"})
    emails = {m["sub"]: m.get("email") for m in for_staff["members"]}
    assert emails["alice"] == "alice@acme.example"
    assert emails["erin"] == "erin@acme.example"
    assert all("email" not in member for member in for_erin["members"])


async def test_kick_disconnects_the_target_in_the_same_tenant(connect: Any) -> None:
    alice, erin, carol = await connect("alice"), await connect("erin"), await connect("carol")
    assert await alice.call("admin:kick", {"sub": "carol"}) == {"ok": True, "kicked": 0}
    assert await alice.call("admin:kick", {"sub": "erin"}) == {"ok": True, "kicked": 1}
    assert await erin.wait_for("auth:revoked") == [{"code": "kicked"}]
    await asyncio.wait_for(erin.disconnected.wait(), 5)
    assert carol.sio.connected


# -- connect refusals ---------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def forged_key() -> SigningKey:
    return SigningKey.rsa("attacker")


async def refused(url: str, token: str | None = None, **kwargs: Any) -> Any:
    client = Client(url)
    try:
        assert not await client.connect(token, **kwargs)
        return client.connect_error
    finally:
        await client.close()


async def test_connect_refusal_codes(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tokens: dict[str, dict[str, Any]],
    forged_key: SigningKey,
) -> None:  # fmt: skip
    transport = "websocket"
    # (polling refusals are checked with the official JavaScript client in test_realtime_js)
    url = node[0]
    alice = tokens["alice"]["access_token"]
    claims = jwt_payload(alice)
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "attacker"}
    cases = {
        "token_missing": await refused(url, None, transport=transport),
        "token_malformed": await refused(url, "not-a.jwt", transport=transport),
        "signature_invalid": await refused(url, alice[:-8] + "AAAAAAAA", transport=transport),
        "algorithm_not_allowed": await refused(
            url, forge({"alg": "none", "typ": "at+jwt"}, claims, None), transport=transport),
        "issuer_unknown": await refused(
            url, forge(header, {**claims, "iss": "https://evil.example"}, forged_key),
            transport=transport),
        "key_unknown": await refused(url, forge(header, claims, forged_key), transport=transport),
        "claims_invalid": await refused(url, tokens["alice"]["id_token"], transport=transport),
    }  # fmt: skip
    for expected, error in cases.items():
        assert error["message"] == "unauthorized", (expected, error)
        assert error["data"]["code"] == expected, (expected, error)
        assert alice not in json.dumps(error)
    bad_auth = await refused(url, auth={"token": 7}, transport=transport)
    assert bad_auth["data"]["code"] == "token_malformed"


async def test_namespace_forbidden(node: tuple[str, SsoServer], tokens: dict[str, Any]) -> None:
    client = Client(node[0])
    client.sio.on("connect_error", client._on_connect_error, namespace="/admin")
    try:
        await client.sio.connect(
            node[0], auth={"token": tokens["alice"]["access_token"]}, namespaces=["/admin"],
            transports=["websocket"], wait_timeout=5,
        )  # fmt: skip
    except Exception:  # noqa: S110 - the refusal is asserted below
        pass
    finally:
        await client.close()
    assert client.connect_error == {
        "message": "forbidden",
        "data": {"code": "namespace_forbidden", "message": "this namespace is not served"},
    }


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [("https://evil.example", False), ("http://127.0.0.1:8000", True),
     ("http://127.0.0.1:8000.evil.example", False), ("null", False)],
)  # fmt: skip
async def test_origin_checked_on_the_handshake(
    node: tuple[str, SsoServer], origin: str, allowed: bool
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{node[0]}/socket.io/?EIO=4&transport=polling",
                                  headers={"Origin": origin})  # fmt: skip
    if allowed:
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
    else:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "origin_denied"
        assert "access-control-allow-origin" not in response.headers
    client = Client(node[0])
    try:
        connected = await client.connect(None, headers={"Origin": origin})
    finally:
        await client.close()
    assert not connected  # refused at the handshake (403), or for lack of a token
    if allowed:
        assert client.connect_error["data"]["code"] == "token_missing"


async def test_x_forwarded_host_does_not_make_an_origin_same_site(
    node: tuple[str, SsoServer],
) -> None:
    headers = {"Origin": "https://evil.example", "X-Forwarded-Host": "evil.example",
               "X-Forwarded-Proto": "https"}  # fmt: skip
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{node[0]}/socket.io/?EIO=4&transport=polling", headers=headers)
    assert response.status_code == 403


async def test_query_token_refused(node: tuple[str, SsoServer], tokens: dict[str, Any]) -> None:
    url = f"{node[0]}?token={tokens['alice']['access_token']}"
    error = await refused(url, None)
    assert error["data"]["code"] == "token_malformed"
    assert "query string" in error["data"]["message"]


async def test_bearer_header_and_no_fall_through(
    node: tuple[str, SsoServer], tokens: dict[str, Any]
) -> None:
    alice = tokens["alice"]["access_token"]
    client = Client(node[0])
    try:
        assert await client.connect(None, headers={"Authorization": f"Bearer {alice}"})
    finally:
        await client.close()
    error = await refused(node[0], auth={"token": ""}, headers={"Authorization": f"Bearer {alice}"})
    assert error["data"]["code"] == "token_missing"


# -- events: sizes, shapes, rates -------------------------------------------------------------


async def test_oversized_and_malformed_payloads(connect: Any) -> None:
    erin = await connect("erin")
    big = await erin.call("chat:send", {"room": "tenant:acme:general", "text": "x" * 20000})
    assert code(big) == "payload_too_large"
    assert code(await erin.call("chat:send", ["tenant:acme:general", "hi"])) == "invalid_payload"
    assert code(await erin.call("chat:send", {"room": "tenant:acme:general"})) == "invalid_payload"
    assert code(await erin.call("room:join", {"room": "a" * 300})) == "invalid_payload"
    assert ok(await erin.call("room:join", {"room": "tenant:acme:general"}))  # still fine


async def test_event_rate_limit_hits_only_the_flooder(connect: Any) -> None:
    flooder, bystander = await connect("erin"), await connect("bob")
    answers = await asyncio.gather(
        *(flooder.call("room:join", {"room": "tenant:acme:flood"}) for _ in range(80))
    )
    codes = {a["error"]["code"] for a in answers if not a["ok"]}
    assert codes == {"rate_limited"}
    assert sum(a["ok"] for a in answers) >= 40
    assert ok(await bystander.call("room:join", {"room": "tenant:acme:general"}))


# -- token lifetime -------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def timed_node(node_idp: NodeProvider) -> AsyncIterator[tuple[str, SsoServer, OffsetClock]]:
    clock = OffsetClock()
    settings = example_settings(node_idp, limits=GENEROUS)
    async with running_ssoio(settings, clock=clock) as (url, server):
        yield url, server, clock


async def test_expiry_without_refresh_disconnects(
    timed_node: tuple[str, SsoServer, OffsetClock], node_idp: NodeProvider
) -> None:
    url, _server, clock = timed_node
    client = Client(url)
    try:
        token = (await node_idp.user_tokens("bob"))["access_token"]
        assert await client.connect(token)
        remaining = jwt_payload(token)["exp"] - clock()
        clock.offset += remaining - 59  # one second into the warning window
        assert (await client.wait_for("auth:expiring"))[0]["expires_in"] in (58, 59, 60)
        clock.offset += 59 + 31  # past exp + leeway
        assert await client.wait_for("auth:revoked") == [{"code": "token_expired"}]
        await asyncio.wait_for(client.disconnected.wait(), 5)
    finally:
        await client.close()


async def test_expiry_with_refresh_keeps_the_connection(
    timed_node: tuple[str, SsoServer, OffsetClock], node_idp: NodeProvider,
) -> None:  # fmt: skip
    url, _server, clock = timed_node
    first = await node_idp.user_tokens("erin")
    client = Client(url)
    try:
        assert await client.connect(first["access_token"])
        assert ok(await client.call("room:join", {"room": "tenant:acme:general"}))
        await asyncio.sleep(3.1)  # so the refreshed token outlives the first one
        refreshed = await node_idp.refresh(first["refresh_token"])
        first_exp = jwt_payload(first["access_token"])["exp"]
        assert jwt_payload(refreshed["access_token"])["exp"] >= first_exp + 3
        answer = await client.call("auth:refresh", {"token": refreshed["access_token"]})
        assert ok(answer)
        clock.offset += first_exp + 30.2 - clock()  # the first token is now past exp + leeway
        await asyncio.sleep(1.1)  # the timer loop runs at least once a second
        assert client.got("auth:revoked") == []
        assert client.sio.connected
        assert ok(await client.call("presence:list", {"room": "tenant:acme:general"}))
    finally:
        await client.close()


async def test_refresh_to_another_identity_is_refused(connect: Any, tokens: dict[str, Any]) -> None:
    bob = await connect("bob")
    answer = await bob.call("auth:refresh", {"token": tokens["alice"]["access_token"]})
    assert code(answer) == "forbidden"
    assert await bob.call("room:join", {"room": "staff"}) == {"ok": True, "room": "staff"}


# -- the server API -----------------------------------------------------------------------------


async def test_server_api(
    node: tuple[str, SsoServer], node_idp: NodeProvider, connect: Any
) -> None:
    alice, erin = await connect("alice"), await connect("erin")
    with_scope = await node_idp.client_credentials_token()
    without = await node_idp.client_credentials_token(
        "ssoio-backend-noscope", "ssoio-backend-noscope-secret", scope=""
    )
    body = {"room": "user:alice", "event": "memo", "data": {"text": "for alice only"}}
    async with httpx.AsyncClient(base_url=node[0]) as http:
        denied = await http.post(
            "/api/v1/emit", json=body, headers={"Authorization": f"Bearer {without}"}
        )
        anonymous = await http.post("/api/v1/emit", json=body)
        sent = await http.post(
            "/api/v1/emit", json=body, headers={"Authorization": f"Bearer {with_scope}"}
        )
        reserved = await http.post("/api/v1/emit", json={**body, "event": "auth:revoked"},
                                   headers={"Authorization": f"Bearer {with_scope}"})  # fmt: skip
        kicked = await http.post("/api/v1/disconnect", json={"sub": "erin"},
                                 headers={"Authorization": f"Bearer {with_scope}"})  # fmt: skip
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "forbidden")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "token_malformed")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert (sent.status_code, sent.json()) == (200, {"ok": True})
    assert (reserved.status_code, reserved.json()["error"]["code"]) == (400, "invalid_payload")
    assert await alice.wait_for("memo") == [{"text": "for alice only"}]
    assert erin.got("memo") == []
    assert kicked.json() == {"ok": True, "disconnected": 1}
    assert await erin.wait_for("auth:revoked") == [{"code": "kicked"}]


async def test_health(node: tuple[str, SsoServer]) -> None:
    async with httpx.AsyncClient(base_url=node[0]) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")


async def test_connect_rate_limits(node_idp: NodeProvider, tokens: dict[str, Any]) -> None:
    limits = {"connects_per_ip": {"rate": 0.01, "burst": 3},
              "failed_auth_per_ip": {"rate": 0.01, "burst": 2}}  # fmt: skip
    async with running_ssoio(example_settings(node_idp, limits=limits)) as (url, _server):
        for _ in range(2):
            assert (await refused(url, "bad.token.here"))["data"]["code"] == "token_malformed"
        # failed authentications used up: even a valid token is refused before any work
        error = await refused(url, tokens["alice"]["access_token"])
        assert (error["message"], error["data"]["code"]) == ("forbidden", "rate_limited")
        error = await refused(url, tokens["alice"]["access_token"])
        assert error["data"]["code"] == "rate_limited"
