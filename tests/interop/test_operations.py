"""Operating ssoio against the real provider: the audit trail and metrics of a scripted
scenario (with no secret in the logs), live reload, graceful shutdown, TLS, proxies."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ssoio.app import SsoServer
from ssoio.serving import _JsonFormatter, quiet_libraries, uvicorn_config

from .asgi_server import serve_asgi
from .provider import NodeProvider
from .ssoio_server import EXAMPLE, Client, example_settings, running_ssoio
from .web_login import Browser, login_setup

pytestmark = pytest.mark.interop

GENEROUS = {
    "connects_per_ip": {"rate": 1000, "burst": 1000},
    "failed_auth_per_ip": {"rate": 1000, "burst": 1000},
}


@pytest.fixture
def captured_logs() -> Iterator[list[str]]:
    """Every log line, formatted as `ssoio serve` writes it (JSON)."""
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture()
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # as `ssoio serve` runs by default
    quiet_libraries()
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def audit_events(lines: list[str]) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in lines]
    return [r for r in records if r.get("logger") == "ssoio.audit"]


async def test_audit_and_metrics_of_a_scenario_and_no_secrets_in_logs(
    captured_logs: list[str],
) -> None:
    async with login_setup() as setup:
        idp, url = setup.idp, setup.url
        browser = Browser(url)
        alice_tokens = await idp.user_tokens("alice")
        erin_tokens = await idp.user_tokens("erin")
        backend = await idp.client_credentials_token()
        alice, erin = Client(url), Client(url)
        try:
            await browser.sign_in("bob")
            cookie = browser.session_cookie
            handed = (await browser.http.get(f"{url}/auth/token")).json()["access_token"]
            assert await alice.connect(alice_tokens["access_token"])
            assert await erin.connect(erin_tokens["access_token"])
            assert not await Client(url).connect("forged.token.value")
            await alice.call("room:join", {"room": "tenant:acme:general"})
            await erin.call("room:join", {"room": "staff"})  # denied
            await alice.call("admin:kick", {"sub": "erin"})
            async with httpx.AsyncClient(base_url=url) as http:
                memo = {"room": "user:alice", "event": "memo", "data": {}}
                bearer = {"Authorization": f"Bearer {backend}"}
                await http.post("/api/v1/emit", headers=bearer, json=memo)
                metrics = (await http.get("/metrics")).text
            await browser.http.post(f"{url}/auth/logout", headers={"Origin": url})
        finally:
            for client in (alice, erin):
                await client.close()
            await browser.close()

    events = audit_events(captured_logs)
    names = [e["event"] for e in events]
    for expected in ("auth.login", "auth.connect.accepted", "auth.connect.refused",
                     "room.join", "event.denied", "admin.kick", "auth.revoked", "api.emit",
                     "auth.logout", "key.fetch"):  # fmt: skip
        assert expected in names, expected
    refused = next(e for e in events if e["event"] == "auth.connect.refused")
    assert refused["code"] == "token_malformed"
    assert {"ip", "origin", "transport", "namespace"} <= set(refused)
    denied = next(e for e in events if e["event"] == "event.denied")
    assert (denied["name"], denied["code"], denied["sub"]) == ("room:join", "forbidden", "erin")

    assert 'ssoio_connects_total{code="ok",result="accepted"}' in metrics
    assert 'ssoio_connects_total{code="token_malformed",result="refused"} 1.0' in metrics
    assert 'ssoio_events_total{code="forbidden",event="room:join",result="denied"} 1.0' in metrics
    assert 'ssoio_disconnects_total{reason="kicked"} 1.0' in metrics
    assert 'ssoio_key_fetches_total{issuer="primary",result="ok"}' in metrics
    assert "ssoio_event_decision_seconds_bucket" in metrics
    assert 'ssoio_connections{namespace="/"}' in metrics
    assert "ssoio_token_cache_lookups_total" in metrics

    everything = "\n".join(captured_logs)
    secrets = [alice_tokens["access_token"], alice_tokens["refresh_token"],
               alice_tokens["id_token"], erin_tokens["access_token"], backend, handed,
               cookie or "no-cookie", "ssoio-web-secret", "test-session-secret-0123456789abcdef",
               "alice-pw", "bob-pw"]  # fmt: skip
    for secret in secrets:
        assert secret not in everything
        assert secret.split(".")[-1] not in everything  # not even a token's signature


@pytest.fixture
def config_file(tmp_path: Path, node_idp: NodeProvider) -> Path:
    text = EXAMPLE.read_text()
    text = text.replace("${SSOIO_ISSUER:-http://127.0.0.1:8000/dev-idp}", node_idp.issuer)
    text = text.replace(
        'admin_requires = "scope:ssoio:admin"', 'admin_requires = "scope:ssoio:emit"'
    )
    text = text.replace("connects_per_ip = { rate = 5, burst = 200 }",
                        "connects_per_ip = { rate = 1000, burst = 1000 }")  # fmt: skip
    path = tmp_path / "ssoio.toml"
    path.write_text(text)
    return path


async def test_reload_tightens_a_room_without_dropping_connections(
    node_idp: NodeProvider, config_file: Path
) -> None:
    from ssoio.settings import load_settings

    settings = load_settings(config_file, env={})
    async with running_ssoio(settings, config_path=str(config_file)) as (url, _server):
        bob, dave = Client(url), Client(url)
        backend = await node_idp.client_credentials_token()
        try:
            assert await bob.connect((await node_idp.user_tokens("bob"))["access_token"])
            assert await dave.connect((await node_idp.user_tokens("dave"))["access_token"])
            for client in (bob, dave):
                assert (await client.call("room:join", {"room": "staff"}))["ok"]
            # the staff room now also needs the chat scope: dave has none
            tightened = config_file.read_text().replace(
                'pattern = "staff"\njoin = "role:staff"',
                'pattern = "staff"\njoin = { all = ["role:staff", "scope:chat"] }',
            )
            config_file.write_text(tightened)
            async with httpx.AsyncClient(base_url=url) as http:
                bearer = {"Authorization": f"Bearer {backend}"}
                answer = await http.post("/api/v1/reload", headers=bearer)
                assert answer.json()["ok"], answer.text
                assert answer.json()["kept"] == 2
                revoked = await dave.wait_for("room:revoked")
                assert revoked == [{"room": "staff", "code": "permission_revoked"}]
                assert dave.sio.connected
                assert (await dave.call("room:join", {"room": "staff"}))["error"]["code"] == (
                    "forbidden"
                )
                assert bob.got("room:revoked") == []
                assert (await bob.call("presence:list", {"room": "staff"}))["ok"]
                # a broken file is refused and the running policy stays
                config_file.write_text(tightened.replace('join = "authenticated"', "join = 7", 1))
                refused = await http.post("/api/v1/reload", headers=bearer)
                assert refused.status_code == 400
                assert refused.json()["problems"]
                assert (await bob.call("room:join", {"room": "tenant:acme:x"}))["ok"]
                denied = await http.post("/api/v1/reload")
                assert denied.status_code == 401
        finally:
            await bob.close()
            await dave.close()


async def test_drain_closes_sessions_and_refuses_new_ones(node_idp: NodeProvider) -> None:
    settings = example_settings(node_idp, limits=GENEROUS)
    async with running_ssoio(settings) as (url, server):
        client = Client(url)
        try:
            assert await client.connect((await node_idp.user_tokens("erin"))["access_token"])
            await server.drain(grace_s=1)
            await asyncio.wait_for(client.disconnected.wait(), 5)
            async with httpx.AsyncClient() as http:
                ready = await http.get(f"{url}/readyz")
            assert (ready.status_code, ready.json()["status"]) == (503, "draining")
            late = Client(url)
            assert not await late.connect((await node_idp.user_tokens("erin"))["access_token"])
            await late.close()
        finally:
            await client.close()


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


async def test_tls_termination_and_security_headers(node_idp: NodeProvider, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = example_settings(
        node_idp,
        server={"public_url": "https://127.0.0.1", "tls": {"cert_file": str(cert),
                                                           "key_file": str(key)}},
    )  # fmt: skip
    server = SsoServer(settings)
    config = uvicorn_config(server, "127.0.0.1", 0)
    overrides = {k: getattr(config, k) for k in ("ssl_certfile", "ssl_keyfile", "ssl_ciphers")}
    async with serve_asgi(server.asgi_app, lifespan="on", **overrides) as url:
        context = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=context) as http:
            answer = await http.get(url.replace("http://", "https://") + "/healthz")
    assert answer.json() == {"status": "ok"}
    assert answer.headers["strict-transport-security"].startswith("max-age=31536000")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"


@pytest.fixture
async def proxied(node_idp: NodeProvider) -> AsyncIterator[tuple[str, SsoServer]]:
    settings = example_settings(node_idp, server={"trusted_proxies": ["127.0.0.1"]},
                                limits={"connects_per_ip": {"rate": 0.01, "burst": 2}})  # fmt: skip
    server = SsoServer(settings)
    config = uvicorn_config(server, "127.0.0.1", 0)
    async with serve_asgi(server.asgi_app, lifespan="on", proxy_headers=config.proxy_headers,
                          forwarded_allow_ips=config.forwarded_allow_ips) as url:  # fmt: skip
        yield url, server


async def test_trusted_proxy_supplies_the_client_ip(proxied: tuple[str, SsoServer]) -> None:
    url, _server = proxied
    # each forwarded address has its own connect bucket (burst 2); the proxy is trusted
    for address in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):
        client = Client(url)
        assert not await client.connect("x.y.z", headers={"X-Forwarded-For": address})
        assert client.connect_error["data"]["code"] == "token_malformed"
        await client.close()
    third = Client(url)
    assert not await third.connect("x.y.z", headers={"X-Forwarded-For": "10.0.0.1"})
    assert third.connect_error["data"]["code"] == "rate_limited"
    await third.close()


async def test_reload_changes_the_allowed_origins(node_idp: NodeProvider) -> None:
    settings = example_settings(node_idp)
    async with running_ssoio(settings) as (url, server):
        handshake = f"{url}/socket.io/?EIO=4&transport=polling"
        new_origin = {"Origin": "https://portal.acme.example"}
        async with httpx.AsyncClient() as http:
            assert (await http.get(handshake, headers=new_origin)).status_code == 403
            await server.reload(
                example_settings(node_idp, server={"allowed_origins": [new_origin["Origin"]]})
            )
            assert (await http.get(handshake, headers=new_origin)).status_code == 200


def test_audit_records_survive_a_warning_log_level() -> None:
    from ssoio.config.operations import LoggingSettings
    from ssoio.serving import configure_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(LoggingSettings(level="warning"))
        assert logging.getLogger("ssoio.audit").isEnabledFor(logging.INFO)
        assert not logging.getLogger("ssoio.web").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("ssoio.audit").setLevel(logging.NOTSET)
