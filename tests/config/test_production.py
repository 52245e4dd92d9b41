"""Production mode: one refusal per rule, each naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ssoio.errors import ConfigError
from ssoio.settings import validate_raw
from tests.support.cli import run_cli

SECRET = "k" * 40


def production(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "mode": "production",
        "server": {"public_url": "https://chat.acme.example"},
        "login": {"session_secret": SECRET},
        "api": {"clients": ["ssoio-backend"]},
        "metrics": {"bearer_token": SECRET},
        "issuers": [{"name": "kc", "issuer": "https://kc.acme.example/realms/acme",
                     "audiences": ["ssoio-api"]}],
    }  # fmt: skip
    for section, values in changes.items():
        if isinstance(values, dict) and isinstance(raw.get(section), dict):
            raw[section] = {**raw[section], **values}
        else:
            raw[section] = values
    return raw


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate_raw(raw, {})
    return [str(p) for p in caught.value.problems]


def test_a_sound_production_config_loads() -> None:
    assert validate_raw(production(), {}).mode == "production"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"server": {"public_url": "http://chat.acme.example"}},
         "server.public_url: must be https in production mode"),
        ({"issuers": [{"name": "kc", "issuer": "http://kc.acme.example/realms/acme",
                       "audiences": ["x"]}]},
         "issuers[0].issuer: must be https in production mode"),
        ({"issuers": [{"name": "kc", "issuer": "https://kc.acme.example",
                       "jwks_uri": "http://kc.acme.example/certs", "audiences": ["x"]}]},
         "issuers[0].jwks_uri: must be https in production mode"),
        ({"login": {"session_secret": ""}},
         "login.session_secret: must be at least 32 random characters"),
        ({"login": {"session_secret": "short"}},
         "login.session_secret: must be at least 32 random characters"),
        ({"login": {"session_secret": SECRET, "cookie_secure": "never"}},
         "login.cookie_secure: cookies must be Secure in production"),
        ({"server": {"public_url": "https://c.example", "insecure_allow_query_token": True}},
         "server.insecure_allow_query_token: is refused in production"),
        ({"server": {"public_url": "https://c.example", "allowed_origins": ["*"]}},
         "server.allowed_origins: '*' is refused in production"),
        ({"api": {"clients": []}},
         "api.clients: must list the service clients allowed to call the server API in "
         "production mode (api.requires = 'scope:ssoio:emit' alone also admits user tokens"),
        ({"events": {"admin:kick": {"requires": "role:admin", "fields": {"sub": "string"},
                                    "kick": {"same_attributes": ["tenant"]}}}},
         "api.disconnect.same_attributes: lacks tenant: kick events are limited by it"),
        ({"metrics": {"bearer_token": ""}},
         "metrics.bearer_token: is required in production mode: they are served on the main "
         "listener at /metrics"),
        ({"metrics": {"bearer_token": "", "port": 9100}},
         "metrics.bearer_token: is required in production mode: metrics.host (the main "
         "listener address) is not loopback"),
        ({"metrics": {"bearer_token": "", "port": 9100, "host": "0.0.0.0"}},  # noqa: S104
         "metrics.bearer_token: is required in production mode: metrics.host 0.0.0.0 is not "
         "loopback"),
    ],
)  # fmt: skip
def test_each_refusal_names_its_key(changes: dict[str, Any], expected: str) -> None:
    found = problems(production(**changes))
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    "changes",
    [
        {"metrics": {"bearer_token": "", "port": 9100, "host": "127.0.0.1"}},
        {"metrics": {"bearer_token": "", "port": 9100, "host": "::1"}},
        {"metrics": {"bearer_token": "", "enabled": False}},
        {"api": {"clients": [], "enabled": False}},
        {"events": {"admin:kick": {"requires": "role:admin", "fields": {"sub": "string"},
                                   "kick": {"same_attributes": ["tenant"]}}},
         "api": {"clients": ["b"], "disconnect": {"same_attributes": ["tenant", "org"]}}},
    ],
    ids=["metrics port on 127.0.0.1", "metrics port on ::1", "metrics off", "api off",
         "api disconnect as narrow as kicks"],
)  # fmt: skip
def test_production_accepts(changes: dict[str, Any]) -> None:
    assert validate_raw(production(**changes), {}).mode == "production"


def test_development_allows_what_production_refuses() -> None:
    raw = production(mode="development", server={"public_url": "http://127.0.0.1:8000",
                                                 "insecure_allow_query_token": True})  # fmt: skip
    assert validate_raw(raw, {}).server.insecure_allow_query_token


def test_all_refusals_at_once() -> None:
    raw = production(server={"public_url": "http://c.example", "allowed_origins": ["*"]},
                     login={"session_secret": ""})  # fmt: skip
    assert len(problems(raw)) == 3


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"server": {"trusted_proxies": ["10.0.0.0/8", "proxy.internal"]}},
         "server.trusted_proxies[1]: is not an IP or network"),
        ({"server": {"tls": {"cert_file": "cert.pem"}}},
         "server.tls: cert_file and key_file go together"),
        ({"logging": {"destination": "file"}},
         "logging.file: is required when logging.destination is file"),
        ({"metrics": {"port": 8000}}, "metrics.port: must differ from server.port"),
        ({"cluster": {"redis_url": "redis://127.0.0.1:6379/0"}, "login": {"session_secret": ""}},
         "login.session_secret: is required with cluster.redis_url"),
        # recovery's pid and replay need ssoio's Socket.IO server (issue #18)
        ({"recovery": {"enabled": True}, "server": {"transport": "stock"}},
         'recovery.enabled: needs server.transport = "ssoio"'),
    ],
)  # fmt: skip
def test_operations_problems(changes: dict[str, Any], expected: str) -> None:
    raw = production(mode="development", **changes)
    assert any(p.startswith(expected) for p in problems(raw))


PRODUCTION_TOML = """\
mode = "production"
[server]
public_url = "https://chat.acme.example"
[login]
session_secret = "{secret}"
[api]
requires = "scope:ssoio:emit"
{api}
[metrics]
{metrics}
[[issuers]]
name = "kc"
issuer = "https://kc.acme.example/realms/acme"
audiences = ["ssoio-api"]
"""


@pytest.mark.parametrize("command", ["check-config", "serve"])
async def test_the_command_line_refuses_an_open_api_and_open_metrics(
    tmp_path: Path, command: str
) -> None:
    """``ssoio check-config`` reports, and ``ssoio serve`` refuses to start with, a server
    API restricted by scope only and /metrics without a token on the main listener."""
    config = tmp_path / "production.toml"
    config.write_text(PRODUCTION_TOML.format(secret=SECRET, api="", metrics=""))
    args = ["check-config", str(config)] if command == "check-config" else [
        "serve", "--config", str(config)]  # fmt: skip
    result = await run_cli(*args, timeout_s=30)
    assert (result.status, result.stdout) == (2, ""), result
    assert result.stderr.splitlines() == [
        "api.clients: must list the service clients allowed to call the server API in "
        "production mode (api.requires = 'scope:ssoio:emit' alone also admits user tokens "
        "with it)",
        "metrics.bearer_token: is required in production mode: they are served on the main "
        "listener at /metrics (or serve them on their own metrics.port with metrics.host = "
        '"127.0.0.1")',
    ]
    if command == "check-config":
        config.write_text(PRODUCTION_TOML.format(
            secret=SECRET, api='clients = ["ssoio-backend"]',
            metrics='port = 9100\nhost = "127.0.0.1"'))  # fmt: skip
        result = await run_cli(*args, timeout_s=30)
        assert (result.status, result.stdout) == (0, "ok\n"), result
