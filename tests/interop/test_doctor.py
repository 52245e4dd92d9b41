"""``ssoio doctor`` against the real node OpenID Provider (npm ``oidc-provider``), with
``config/ssoio.example.toml`` pointed at it as a user would: an all-ok configuration, then
one test per mistake of issue #16, each checking the exact suggestion printed.
(LemonLDAP::NG joins this suite with the logout work; its family is recognised from its
metadata in tests/oidc/test_families.py.)"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.support.cli import CliResult, run_cli
from tests.support.forge import SigningKey, forge

from .provider import NodeProvider, ensure_node_modules, jwt_header, jwt_payload, require_tool

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "ssoio.example.toml"
COMPATIBLE = 'token_types = ["at+jwt", "JWT"]'


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def lemonish_idp() -> AsyncIterator[NodeProvider]:
    """The node provider shaped like LemonLDAP::NG's defaults: access tokens with
    ``typ: JWT`` and groups released as one "; "-joined string."""
    require_tool("node")
    ensure_node_modules()
    provider = await NodeProvider.start(access_token_typ="JWT", groups_join="; ")
    try:
        yield provider
    finally:
        await provider.stop()


def config(tmp_path: Path, *replacements: tuple[str, str]) -> str:
    """The example configuration with some of its lines changed (each must be found)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "ssoio.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


async def doctor(
    path: str, issuer: str, token: str | None = None, *extra: str, audience: str = "ssoio-api"
) -> CliResult:
    args = ["doctor", "--config", path, *(["--token", token] if token else []), *extra]
    env = {"SSOIO_ISSUER": issuer, "SSOIO_AUDIENCE": audience}
    return await run_cli(*args, env=env)


def line_of(result: CliResult, check: str, status: str = "") -> str:
    found = [
        line
        for line in result.stdout.splitlines()
        if line[6:].startswith(check + " ") and line.startswith(status)
    ]
    assert len(found) == 1, result.stdout
    return found[0]


def assert_no_token(result: CliResult, token: str) -> None:
    for output in (result.stdout, result.stderr):
        assert token not in output
        assert token.rsplit(".", 1)[1] not in output


async def test_all_ok(node_idp: NodeProvider, tmp_path: Path) -> None:
    token = (await node_idp.user_tokens("alice"))["access_token"]
    result = await doctor(config(tmp_path), node_idp.issuer, token)
    assert result.status == 0, result.stdout + result.stderr
    statuses = [line.split()[0] for line in result.stdout.splitlines()[:-1]]
    assert set(statuses) <= {"ok", "info"}, result.stdout
    names = [line[6:22].strip() for line in result.stdout.splitlines()]
    assert names[:7] == [
        "configuration",
        "discovery",
        "issuer",
        "jwks_uri",
        "jwks",
        "token endpoint",
        "preset",
    ]
    assert line_of(result, "claims roles").endswith("realm_access.roles -> admin, staff")
    assert "decision         room staff join: allow" in result.stdout
    assert line_of(result, "verification").startswith("ok")
    assert result.stdout.splitlines()[-1].endswith("0 warnings, 0 failures")
    assert_no_token(result, token)

    as_json = await doctor(config(tmp_path), node_idp.issuer, token, "--json")
    report = json.loads(as_json.stdout)
    assert report["exit"] == 0
    assert {c["status"] for c in report["checks"]} <= {"ok", "info"}
    assert "back-channel: register" in line_of(result, "logout", "info")


async def test_issuer_trailing_slash(node_idp: NodeProvider, tmp_path: Path) -> None:
    result = await doctor(config(tmp_path), node_idp.issuer + "/")
    assert result.status == 2, result.stdout
    line = line_of(result, "issuer")
    assert line.startswith(
        "fail  issuer           the discovery document names another issuer: "
        "trailing slash: the provider's issuer has no trailing slash"
    )
    assert line.endswith(f'; suggestion: issuer = "{node_idp.issuer}"')


async def test_wrong_audience(node_idp: NodeProvider, tmp_path: Path) -> None:
    token = (await node_idp.user_tokens("bob"))["access_token"]
    result = await doctor(config(tmp_path), node_idp.issuer, token, audience="chat-api")
    assert result.status == 2, result.stdout
    line = line_of(result, "token aud")
    assert '(seen "ssoio-api"; expected ["chat-api"])' in line
    assert line.endswith(
        '; suggestion: have the provider add "chat-api" to aud: an API / '
        "resource chat-api at the provider, requested by the client"
    )
    assert line_of(result, "verification").startswith("fail  verification     audience_mismatch")
    assert_no_token(result, token)


async def test_strict_typ(lemonish_idp: NodeProvider, tmp_path: Path) -> None:
    token = (await lemonish_idp.user_tokens("bob"))["access_token"]
    assert jwt_header(token)["typ"] == "JWT"
    strict = config(tmp_path, (COMPATIBLE, 'token_types = ["at+jwt"]'))
    result = await doctor(strict, lemonish_idp.issuer, token)
    assert result.status == 2, result.stdout
    line = line_of(result, "token typ")
    assert '(seen "JWT"; expected ["at+jwt"])' in line
    assert line.endswith('; suggestion: token_types = ["at+jwt", "JWT"]')


async def test_wrong_preset(node_idp: NodeProvider, tmp_path: Path) -> None:
    token = (await node_idp.user_tokens("alice"))["access_token"]
    generic = config(tmp_path, ('preset = "keycloak"', 'preset = "generic"'))
    result = await doctor(generic, node_idp.issuer, token)
    assert result.status == 1, result.stdout
    assert line_of(result, "claims roles").endswith("roles -> (none)")
    line = line_of(result, "claims preset")
    assert line.startswith(
        "warn  claims preset    the keycloak preset finds 3 roles and groups in "
        "this token, the configured mapping 1"
    )
    assert line.endswith('; suggestion: preset = "keycloak"')


async def test_delimited_groups(lemonish_idp: NodeProvider, tmp_path: Path) -> None:
    token = (await lemonish_idp.user_tokens("alice"))["access_token"]
    assert jwt_payload(token)["groups"] == "/eng; users"
    result = await doctor(config(tmp_path), lemonish_idp.issuer, token)
    assert result.status == 1, result.stdout
    assert line_of(result, "claims groups", "ok").endswith("groups -> eng; users")
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warn")]
    assert warnings == [
        "warn  claims groups    groups is one string holding 2 values separated by ';'; taken as "
        'one value; suggestion: split = { groups = ";" }'
    ]
    fixed = config(
        tmp_path,
        (
            'attributes = { tenant = "tenant" }\n',
            'attributes = { tenant = "tenant" }\nsplit = { groups = ";" }\n',
        ),
    )
    again = await doctor(fixed, lemonish_idp.issuer, token)
    assert again.status == 0, again.stdout
    assert line_of(again, "claims groups").endswith("groups -> eng, users")


async def test_unknown_kid(node_idp: NodeProvider, tmp_path: Path) -> None:
    real = (await node_idp.user_tokens("alice"))["access_token"]
    kids = [key["kid"] for key in (await node_idp.jwks())["keys"]]
    token = forge(
        {"alg": "RS256", "typ": "at+jwt", "kid": "rotated-away"},
        jwt_payload(real),
        SigningKey.rsa("rotated-away"),
    )
    result = await doctor(config(tmp_path), node_idp.issuer, token)
    assert result.status == 2, result.stdout
    line = line_of(result, "token kid")
    assert f'(seen "rotated-away"; expected {json.dumps(kids)})' in line
    assert line.endswith(
        "; suggestion: get a fresh token: this one was signed by a key from "
        "before a rotation, or by another realm or provider"
    )
    assert line_of(result, "verification").startswith("fail  verification     key_unknown")
    assert_no_token(result, token)


async def test_provider_down(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        issuer = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = await doctor(config(tmp_path), issuer)
    assert result.status == 2, result.stdout
    line = line_of(result, "discovery")
    assert line.startswith(
        f"fail  discovery        {issuer}/.well-known/openid-configuration "
        "did not answer: ConnectError"
    )
    assert line.endswith(
        "; suggestion: check issuers.issuer and that this host reaches the "
        "provider (DNS, proxy, firewall, TLS); is the provider running?"
    )


async def test_auto_preset_in_doctor_and_explain(node_idp: NodeProvider, tmp_path: Path) -> None:
    """``preset = "auto"``: both commands say what the provider's metadata picks (the node
    provider is none of the known products: generic); the token is read from stdin."""
    token = (await node_idp.user_tokens("alice"))["access_token"]
    auto = config(tmp_path, ('preset = "keycloak"', 'preset = "auto"'))
    env = {"SSOIO_ISSUER": node_idp.issuer, "SSOIO_AUDIENCE": "ssoio-api"}
    result = await run_cli("doctor", "--config", auto, "--token", "-", stdin=token + "\n", env=env)
    assert line_of(result, "preset") == (
        'ok    preset           "auto" picks generic: an OpenID Connect provider ssoio has no '
        "preset for (no rule matched)"
    )
    assert line_of(result, "claims preset").endswith('; suggestion: preset = "keycloak"')
    claims = tmp_path / "alice.json"
    claims.write_text(json.dumps(jwt_payload(token)))
    explained = await run_cli("explain", "--config", auto, "--claims", str(claims),
                              "--room", "staff", env=env)  # fmt: skip
    assert explained.stderr.splitlines() == [
        "preset     primary: auto picks generic (an OpenID Connect provider ssoio has no "
        "preset for)"
    ]
    assert explained.status == 1  # generic finds no roles in Keycloak-shaped claims
