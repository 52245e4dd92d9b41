"""deploy/: the docker-compose trial and the systemd unit agree with ssoio and each other.

No container engine or systemd runs on the build machine, so nothing here starts them.
What is checked: ``deploy/compose/ssoio.toml`` loads (and passes ``ssoio check-config``)
with exactly the environment the compose file gives each node; the addresses, names and
ports the files share agree (nginx's address is the trusted proxy, Keycloak's host name
makes the configured issuer, the public URL is registered in the realm export); the
systemd unit has the keys a draining, reloadable, hardened service needs; nginx passes
WebSocket upgrades and outlasts Engine.IO's heartbeat; docs/deployment.md shows the unit
and an nginx example that meet the same rules.

The compose file is parsed with PyYAML when it is importable (it is pinned, through
uvicorn[standard]); otherwise the nodes' environment comes from ``FALLBACK_NODE_ENV``
below, which the YAML test keeps equal to the file whenever PyYAML is there.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from ssoio.config import Settings
from ssoio.config.server import RealtimeSettings, ServerSettings
from ssoio.settings import load_settings
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
COMPOSE_TOML = COMPOSE_DIR / "ssoio.toml"
NGINX = COMPOSE_DIR / "nginx.conf"
UNIT = ROOT / "deploy" / "systemd" / "ssoio.service"
GUIDE = ROOT / "docs" / "deployment.md"
REALM = ROOT / "config" / "keycloak" / "realm-export.json"

NODES = ("ssoio-1", "ssoio-2")

# The environment docker-compose.yml gives each node; used only without PyYAML.
FALLBACK_NODE_ENV = {
    node: {
        "SSOIO_CLIENT_SECRET": "change-me",
        "SSOIO_SESSION_SECRET": "demo-only-session-secret-change-me-4f9c2a7e51b3",
        "SSOIO_REDIS_URL": "redis://redis:6379/0",
        "SSOIO_NODE_ID": node,
    }
    for node in NODES
}

DEFAULT_GRACE_S = float(ServerSettings.model_fields["shutdown_grace_s"].default)
HEARTBEAT_S = float(
    RealtimeSettings.model_fields["ping_interval_s"].default
    + RealtimeSettings.model_fields["ping_timeout_s"].default
)  # 25 + 20: an idle, healthy connection is silent at most this long


def _yaml() -> Any | None:
    try:
        return importlib.import_module("yaml")
    except ImportError:  # pragma: no cover - PyYAML comes with uvicorn[standard]
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PyYAML is not installed; CI must provide it (uvicorn[standard] does)")
        return None


def compose() -> dict[str, Any]:
    yaml = _yaml()
    if yaml is None:  # pragma: no cover
        pytest.skip("PyYAML is not installed: the compose file itself is not parsed")
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def node_env(node: str) -> dict[str, str]:
    """The environment the compose file gives ``node`` (strings, as a container sees it)."""
    if _yaml() is None:  # pragma: no cover
        return FALLBACK_NODE_ENV[node]
    environment = compose()["services"][node]["environment"]
    assert isinstance(environment, dict), "environment must be a mapping"
    return {str(k): str(v) for k, v in environment.items()}


def realm() -> dict[str, Any]:
    data = json.loads(REALM.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def web_client() -> dict[str, Any]:
    [client] = [c for c in realm()["clients"] if c["clientId"] == "ssoio-web"]
    assert isinstance(client, dict)
    return client


def seconds(value: str) -> float:
    """A duration as systemd, nginx and compose write it: "30", "30s", "2m", "1min"."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h)?\s*", value)
    assert match, f"not a duration: {value!r}"
    unit = {None: 1, "s": 1, "sec": 1, "ms": 0.001, "m": 60, "min": 60, "h": 3600}
    return float(match.group(1)) * unit[match.group(2)]


# -- deploy/compose: the configuration and the compose file ---------------------------------


@pytest.mark.parametrize("node", NODES)
def test_the_compose_configuration_loads_with_the_compose_environment(node: str) -> None:
    settings = load_settings(COMPOSE_TOML, env=node_env(node))
    assert settings.cluster.enabled
    assert settings.cluster.node_id == node
    assert settings.login.client_id == web_client()["clientId"]
    assert settings.login.client_secret.get_secret_value() == web_client()["secret"]
    assert len(settings.login.session_secret.get_secret_value()) >= 32
    assert settings.server.host == "0.0.0.0"  # noqa: S104 - inside a container, behind nginx


async def test_ssoio_check_config_accepts_it_with_only_the_compose_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("SSOIO_")]:
        monkeypatch.delenv(name)
    for name, value in node_env("ssoio-1").items():
        monkeypatch.setenv(name, value)
    result = await run_cli("check-config", str(COMPOSE_TOML))
    assert (result.status, result.stdout.strip()) == (0, "ok"), result.stderr
    monkeypatch.delenv("SSOIO_REDIS_URL")  # and the file really needs the environment
    refused = await run_cli("check-config", str(COMPOSE_TOML))
    assert refused.status == 2
    assert "cluster.redis_url: environment variable SSOIO_REDIS_URL is not set" in refused.stderr


def test_the_fallback_environment_is_the_compose_file() -> None:
    for node in NODES:
        assert node_env(node) == FALLBACK_NODE_ENV[node]


def test_every_node_shares_the_secrets_and_has_its_own_name() -> None:
    envs = [node_env(node) for node in NODES]
    shared = {k: v for k, v in envs[0].items() if k != "SSOIO_NODE_ID"}
    assert all({k: v for k, v in e.items() if k != "SSOIO_NODE_ID"} == shared for e in envs)
    assert sorted(e["SSOIO_NODE_ID"] for e in envs) == sorted(NODES)


def settings_of(node: str = "ssoio-1") -> Settings:
    return load_settings(COMPOSE_TOML, env=node_env(node))


def test_nginx_is_the_only_trusted_proxy() -> None:
    services = compose()["services"]
    network = compose()["networks"]["ssoio"]
    [subnet] = [entry["subnet"] for entry in network["ipam"]["config"]]
    address = services["nginx"]["networks"]["ssoio"]["ipv4_address"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    assert settings_of().server.trusted_proxies == (address,)


def test_the_issuer_is_keycloaks_one_host_name() -> None:
    keycloak = compose()["services"]["keycloak"]
    hostname = keycloak["environment"]["KC_HOSTNAME"]
    [issuer] = settings_of().issuers
    assert issuer.issuer == f"{hostname}/realms/{realm()['realm']}"
    assert issuer.claims.preset == "keycloak"
    assert "JWT" in issuer.token_types  # Keycloak's access tokens say typ: JWT
    # the host name is also where the host reaches the published port
    host_port = re.fullmatch(r"http://keycloak:(\d+)", hostname)
    assert host_port
    assert f"127.0.0.1:{host_port.group(1)}:8080" in keycloak["ports"]


def test_keycloak_imports_the_reference_realm_at_start() -> None:
    keycloak = compose()["services"]["keycloak"]
    assert keycloak["command"] == ["start-dev", "--import-realm"]
    [mount] = keycloak["volumes"]
    source, target, mode = mount.split(":")
    assert (COMPOSE_DIR / source).resolve() == REALM
    assert target.startswith("/opt/keycloak/data/import/")
    assert target.endswith(".json")
    assert mode == "ro"


def test_the_public_url_is_nginx_and_registered_in_the_realm() -> None:
    settings = settings_of()
    public = settings.server.public_url
    assert f"{public}/auth/callback" in web_client()["redirectUris"]
    post_logout = web_client()["attributes"]["post.logout.redirect.uris"].split("##")
    assert f"{public}{settings.login.post_logout_path}" in post_logout
    port = public.rsplit(":", 1)[1]
    assert compose()["services"]["nginx"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"listen {port};" in NGINX.read_text(encoding="utf-8")


def test_the_nodes_are_built_from_the_repository_and_stop_gracefully() -> None:
    grace = settings_of().server.shutdown_grace_s
    for node in NODES:
        service = compose()["services"][node]
        build = service["build"]
        assert (COMPOSE_DIR / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).resolve() == COMPOSE_DIR / "Dockerfile"
        [mount] = service["volumes"]
        assert mount == "./ssoio.toml:/etc/ssoio/ssoio.toml:ro"
        # drain grace, then uvicorn's own (grace + 1), before Docker's SIGKILL
        assert seconds(service["stop_grace_period"]) >= 2 * grace + 5
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
        assert "ports" not in service  # reached through nginx only
    dockerfile = (COMPOSE_DIR / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in dockerfile
    assert "pip install -c constraints.txt ." in dockerfile
    assert re.search(r"^USER ssoio", dockerfile, re.M)
    assert 'CMD ["ssoio", "serve", "--config", "/etc/ssoio/ssoio.toml"]' in dockerfile
    for copied in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for name in copied.split():
            assert (ROOT / name).exists(), name


def test_metrics_stay_off_the_proxy() -> None:
    settings = settings_of()
    assert settings.metrics.port not in (0, settings.server.port)
    assert re.search(r"location = /metrics \{\s*return 404;", NGINX.read_text(encoding="utf-8"))


# -- deploy/systemd/ssoio.service ---------------------------------------------------------


def unit_keys(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value (systemd allows repeated keys and empty values)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"a key outside any section: {line!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_systemd_unit_runs_drains_and_reloads_ssoio() -> None:
    service = unit_keys(UNIT.read_text(encoding="utf-8"))["Service"]
    [start] = service["ExecStart"]
    assert re.fullmatch(r"/\S+/ssoio serve --config /\S+\.toml", start)
    assert service["ExecStartPre"] == [start.replace(" serve --config ", " check-config ")]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["KillSignal"] == ["SIGTERM"]
    [stop] = service["TimeoutStopSec"]
    assert seconds(stop) > DEFAULT_GRACE_S
    assert seconds(stop) >= 2 * DEFAULT_GRACE_S + 5  # docs/operating.md's rule
    assert service["Restart"] == ["on-failure"]
    assert service["EnvironmentFile"] == ["/etc/ssoio/env"]
    assert int(service["LimitNOFILE"][0]) >= 65536


def test_the_systemd_unit_is_unprivileged_and_hardened() -> None:
    service = unit_keys(UNIT.read_text(encoding="utf-8"))["Service"]
    assert service["User"] != ["root"]
    assert service["User"] == ["ssoio"]
    expected = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter": "@system-service",
    }  # fmt: skip
    for key, value in expected.items():
        assert service.get(key) == [value], key
    assert "/etc/ssoio" in service["ReadOnlyPaths"][0].split()
    assert re.fullmatch(r"\d+[KMG]", service["MemoryMax"][0])


def fenced(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.M | re.S)


def test_the_guide_shows_the_unit_file_as_it_is() -> None:
    assert fenced("ini") == [UNIT.read_text(encoding="utf-8")]


# -- nginx --------------------------------------------------------------------------------


def block(text: str, opening: str) -> str:
    """The body of the ``{ ... }`` block that starts at ``opening``."""
    start = text.index(opening) + len(opening)
    depth = 1
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start:index]
    raise AssertionError(f"unclosed block {opening!r}")


def directives(body: str, name: str) -> list[str]:
    return [m.strip() for m in re.findall(rf"^\s*{name}\s+([^;]*);", body, re.M)]


def check_nginx(text: str) -> None:
    socket_io = block(text, "location /socket.io/ {")
    assert directives(socket_io, "proxy_http_version") == ["1.1"]
    headers = directives(socket_io, "proxy_set_header")
    assert "Upgrade $http_upgrade" in headers
    assert "Connection $connection_upgrade" in headers
    assert "X-Forwarded-For $remote_addr" in headers
    assert "X-Forwarded-Proto $scheme" in headers
    upgrade_map = block(text, "map $http_upgrade $connection_upgrade {")
    assert re.search(r"^\s*default\s+upgrade;", upgrade_map, re.M)
    [read_timeout] = directives(socket_io, "proxy_read_timeout")
    assert seconds(read_timeout) > HEARTBEAT_S
    assert seconds(read_timeout) > 45
    assert directives(socket_io, "proxy_buffering") == ["off"]
    # long-polling keeps an Engine.IO session on one node: the upstream must be sticky
    assert re.search(r"^\s*ip_hash;", block(text, "upstream ssoio {"), re.M)


def test_the_compose_nginx_passes_websocket_and_outlasts_the_heartbeat() -> None:
    text = NGINX.read_text(encoding="utf-8")
    check_nginx(text)
    servers = directives(block(text, "upstream ssoio {"), "server")
    port = settings_of().server.port
    assert [s.split()[0] for s in servers] == [f"{node}:{port}" for node in NODES]
    assert set(compose()["services"]) == {"keycloak", "redis", "nginx", *NODES}


def test_the_guides_nginx_example_follows_the_same_rules() -> None:
    [example] = fenced("nginx")
    check_nginx(example)
