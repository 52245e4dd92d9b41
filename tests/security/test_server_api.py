"""The server API against its callers: who may call it (``api.clients``), whom a disconnect
reaches (``api.disconnect.same_attributes``), and the metrics endpoint's bearer token.

Every case runs against a live node (``running_node``) with the example configuration: a
user token that carries the API's scope is refused, a service token of tenant acme cannot
disconnect a globex user (whose socket keeps working), and ``/metrics`` answers 401 without
its token. Each row names its source.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.interop.processes import drain, terminate
from tests.security.harness import Node, running_node, settings_from
from tests.support.forge import SigningKey
from tests.support.raw_client import DISCONNECT, RawSocket

SERVICE = "ssoio-backend"  # the example's api.clients
METRICS_TOKEN = "metrics-" + "m" * 32


def service_token(live: Node, **claims: Any) -> str:
    """A client-credentials token of the example's service client (tenant acme)."""
    fields = {"sub": f"service-account-{SERVICE}", "scope": "ssoio:emit", "client_id": SERVICE,
              "azp": SERVICE, "preferred_username": ..., "email": ..., "realm_access": ...,
              "groups": ..., "sid": ..., "tenant": "acme", **claims}  # fmt: skip
    return live.token("erin", **fields)


async def api(live: Node, path: str, token: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {live.remember(token)}"}
    async with httpx.AsyncClient() as http:
        return await http.post(live.url + path, json=body, headers=headers)


async def still_connected(live: Node, socket: RawSocket, sid: str, sub: str) -> None:
    """The socket was not disconnected: nothing revoked, and it still answers a round trip."""
    await live.barrier(socket, sub)
    assert socket.events("auth:revoked") == []
    assert live.server.gateway.connections.get(sid) is not None
    answer = await socket.call("room:join", {"room": f"user:{sub}"})
    assert isinstance(answer, dict), answer
    assert answer.get("ok") is True, answer


async def disconnected(live: Node, socket: RawSocket, sid: str) -> None:
    """auth:revoked {kicked}, then the server's Socket.IO DISCONNECT for the namespace."""
    assert await socket.wait_event("auth:revoked") == {"code": "kicked"}
    packet = await socket.expect(lambda p: p.type == DISCONNECT and p.namespace == "/")
    assert packet is not None, "the server did not disconnect the socket"
    assert live.server.gateway.connections.get(sid) is None


# -- POST /api/v1/disconnect: tenants ---------------------------------------------------------


async def test_a_tenants_service_token_cannot_disconnect_another_tenants_user(
    live: Node,
) -> None:
    """README server API: disconnects skip other tenants' connections without saying so
    (``api.disconnect = { same_attributes = ["tenant"] }``, the rule of admin:kick)."""
    carol, carol_sid = await live.client("carol")  # globex
    dave, dave_sid = await live.client("dave")  # acme
    refused = await api(live, "/api/v1/disconnect", service_token(live), {"sub": "carol"})
    assert (refused.status_code, refused.json()) == (200, {"ok": True, "disconnected": 0})
    await still_connected(live, carol, carol_sid, "carol")
    allowed = await api(live, "/api/v1/disconnect", service_token(live), {"sub": "dave"})
    assert (allowed.status_code, allowed.json()) == (200, {"ok": True, "disconnected": 1})
    await disconnected(live, dave, dave_sid)
    await still_connected(live, carol, carol_sid, "carol")
    await live.assert_healthy()


DISCONNECTS = [
    ("DESIGN.md admin:kick: the same sub at another tenant is skipped", {}, "globex", 0),
    ("README: a service token without a tenant disconnects no one", {"tenant": ...}, "acme", 0),
    ("README: a service token of tenant '*' is no wildcard", {"tenant": "*"}, "acme", 0),
    ("README: a service token of several tenants reaches each", {"tenant": ["globex", "x"]},
     "globex", 1),
    ("control: the same tenant", {}, "acme", 1),
]  # fmt: skip


@pytest.mark.parametrize(("source", "caller", "tenant", "count"), DISCONNECTS,
                         ids=[d[0] for d in DISCONNECTS])  # fmt: skip
async def test_disconnect_reaches_only_the_callers_tenant(
    live: Node, source: str, caller: dict[str, Any], tenant: str, count: int
) -> None:
    target, target_sid = await live.client("erin", tenant=tenant)
    answer = await api(live, "/api/v1/disconnect", service_token(live, **caller), {"sub": "erin"})
    assert answer.json() == {"ok": True, "disconnected": count}, source
    if count:
        await disconnected(live, target, target_sid)
    else:
        await still_connected(live, target, target_sid, "erin")
    await live.assert_healthy()


# -- who may call the API: api.clients ------------------------------------------------------


def user_token_with_the_scope(live: Node) -> str:
    """erin's own token (client ssoio-web) to which the provider also granted ssoio:emit."""
    return live.token("erin", scope="openid profile email chat ssoio:emit")


CALLERS = [
    ("README api.clients: a user token carrying ssoio:emit", user_token_with_the_scope, 403),
    ("README api.clients: a service token of another client",
     lambda n: service_token(n, client_id="reporting", azp="reporting"), 403),
    ("README api.clients: client_id of another client beside our azp",
     lambda n: service_token(n, client_id="reporting"), 403),
    ("README api.clients: no client_id, azp or cid", lambda n: service_token(
        n, client_id=..., azp=...), 403),
    ("README api.clients: client_id a list", lambda n: service_token(
        n, client_id=[SERVICE], azp=...), 403),
    ("README api.clients: Okta's cid", lambda n: service_token(n, client_id=..., azp=...,
                                                                cid=SERVICE), 200),
    ("control: the service client", service_token, 200),
]  # fmt: skip


@pytest.mark.parametrize(("source", "make", "status"), CALLERS, ids=[c[0] for c in CALLERS])
async def test_only_the_service_clients_may_emit(
    live: Node, source: str, make: Any, status: int
) -> None:
    nonce = secrets.token_hex(8)
    answer = await api(live, "/api/v1/emit", make(live),
                       {"room": "user:bob", "event": "memo", "data": {"nonce": nonce}})  # fmt: skip
    assert answer.status_code == status, (source, answer.text)
    assert live.sentinel is not None
    if status == 403:
        assert answer.json()["error"] == {
            "code": "forbidden",
            "message": "this API accepts only tokens issued to its service clients",
        }
        await live.barrier(live.sentinel, "bob")
        assert live.sentinel.events("memo") == [], "delivered although refused"
        refusals = live.logs.audit("api.refused")
        assert [(r["path"], r["code"]) for r in refusals] == [("/api/v1/emit", "forbidden")]
    else:
        got = await live.sentinel.wait_event("memo", where=lambda data: data == {"nonce": nonce})
        assert got is not None, "not delivered"
    await live.assert_healthy()


async def test_a_user_token_with_the_scope_cannot_disconnect_or_reload(live: Node) -> None:
    victim, victim_sid = await live.client("dave")
    token = user_token_with_the_scope(live)
    for path, body in (("/api/v1/disconnect", {"sub": "dave"}), ("/api/v1/reload", {})):
        answer = await api(live, path, token, body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (403, "forbidden"), path
    await still_connected(live, victim, victim_sid, "dave")
    await live.assert_healthy()


# -- /metrics ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def metrics_node(rsa_key: SigningKey) -> AsyncIterator[Node]:
    settings = settings_from(metrics={"bearer_token": METRICS_TOKEN})
    async with running_node(settings, key=rsa_key) as running:
        yield running


@pytest.mark.parametrize(
    ("source", "header", "status"),
    [
        ("README metrics.bearer_token: no Authorization", None, 401),
        ("README metrics.bearer_token: another token", "Bearer " + "x" * 40, 401),
        ("README metrics.bearer_token: the token without the scheme", METRICS_TOKEN, 401),
        ("README metrics.bearer_token: Basic", "Basic " + METRICS_TOKEN, 401),
        ("README metrics.bearer_token: a prefix of the token", "Bearer " + METRICS_TOKEN[:-1],
         401),
        ("control: the token", "Bearer " + METRICS_TOKEN, 200),
    ],
)  # fmt: skip
async def test_metrics_need_their_bearer_token(
    metrics_node: Node, source: str, header: str | None, status: int
) -> None:
    await metrics_node.begin_case()
    async with httpx.AsyncClient() as http:
        answer = await http.get(metrics_node.url + "/metrics",
                                headers={"Authorization": header} if header else {})  # fmt: skip
    assert answer.status_code == status, source
    if status == 200:
        assert "ssoio_connections" in answer.text
    else:
        assert "ssoio_" not in answer.text
        assert answer.json()["error"]["code"] == "token_missing"
    await metrics_node.assert_healthy(also_secret=[METRICS_TOKEN])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PRODUCTION = """\
mode = "production"
[server]
host = "127.0.0.2"
port = {port}
public_url = "https://chat.acme.example"
[login]
session_secret = "{secret}"
[api]
clients = ["ssoio-backend"]
[metrics]
port = {metrics_port}
host = "127.0.0.1"
[[issuers]]
name = "kc"
issuer = "https://127.0.0.1:1/realms/acme"
audiences = ["ssoio-api"]
"""


async def test_production_serves_metrics_on_their_own_loopback_port(tmp_path: Path) -> None:
    """README metrics: production mode without a bearer token is accepted only with metrics
    on their own port bound to loopback (``ssoio serve``, a real process): they answer
    there (metrics.host, not the main listener's 127.0.0.2), and not on the main listener."""
    port, metrics_port = free_port(), free_port()
    config = tmp_path / "production.toml"
    config.write_text(PRODUCTION.format(port=port, metrics_port=metrics_port, secret="s" * 40))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ssoio.cli", "serve", "--config", str(config),
        env={**os.environ, "PYTHONWARNINGS": "error"}, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    log = bytearray()
    reader = asyncio.create_task(drain(process.stderr, log))
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(100):  # bounded: up to ~10 s for the process to listen
                try:
                    scraped = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
                    break
                except httpx.TransportError:
                    assert process.returncode is None, log.decode()
                    await asyncio.sleep(0.1)
            else:
                pytest.fail(f"the metrics port never answered: {log.decode()[-2000:]}")
            main = await http.get(f"http://127.0.0.2:{port}/metrics")
    finally:
        await terminate(process)
        await asyncio.wait_for(reader, 5)
    assert scraped.status_code == 200
    assert "ssoio_connections" in scraped.text
    assert main.status_code == 404
    assert "Traceback" not in log.decode()


async def test_api_refusal_audit_names_what_was_seen(live: Node) -> None:
    """Issue #16: the api.refused audit line carries what the token carried and what was
    expected; the HTTP answer only the code and short message."""
    answer = await api(live, "/api/v1/emit", service_token(live, aud="account"),
                       {"room": "user:bob", "event": "memo", "data": {}})  # fmt: skip
    assert answer.status_code == 401
    assert answer.json()["error"] == {
        "code": "audience_mismatch",
        "message": "the token is not meant for this service",
    }
    [refusal] = live.logs.audit("api.refused")
    assert refusal["detail"]["seen"] == {"aud": ["account"]}
    assert refusal["detail"]["expected"] == {"audiences": ["ssoio-api"]}
    await live.assert_healthy()
