"""config/dev-users.toml: the reference users and the dev clients; and bad files."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from ssoio.devidp.directory import load_directory, parse_directory
from ssoio.errors import ConfigError
from tests.devidp.harness import USERS_FILE

URL = "http://127.0.0.1:8000"

# DESIGN.md's reference scenario: (roles, groups, tenant, scopes)
SCENARIO: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, tuple[str, ...]]] = {
    "alice": (("admin", "staff"), ("/eng",), "acme", ("openid", "profile", "email", "chat")),
    "bob": (("staff",), ("/sales",), "acme", ("openid", "profile", "email", "chat")),
    "carol": ((), (), "globex", ("openid", "profile", "email", "chat")),
    "dave": (("staff",), ("/eng",), "acme", ("openid", "profile", "email")),
    "erin": ((), ("/sales",), "acme", ("openid", "profile", "email", "chat")),
}


def raw_file() -> dict[str, Any]:
    return tomllib.loads(USERS_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("username", sorted(SCENARIO))
def test_reference_users(username: str) -> None:
    user = load_directory(USERS_FILE, URL).users[username]
    assert (user.roles, user.groups, user.tenant, user.scopes) == SCENARIO[username]
    assert user.email == f"{username}@{user.tenant}.example"
    assert user.name == username.capitalize()


def test_exactly_the_reference_users() -> None:
    assert sorted(load_directory(USERS_FILE, URL).users) == sorted(SCENARIO)


def test_clients_get_the_public_url() -> None:
    clients = load_directory(USERS_FILE, f"{URL}/").clients
    demo, backend = clients["ssoio-demo"], clients["ssoio-backend"]
    assert demo.public
    assert demo.redirect_uris == (f"{URL}/auth/callback",)
    assert demo.post_logout_redirect_uris == (f"{URL}/",)
    assert demo.backchannel_logout_uri == f"{URL}/auth/backchannel-logout"
    assert not backend.public
    assert backend.check_client_secret("ssoio-backend-secret")
    assert (backend.grant_types, backend.scopes) == (("client_credentials",), ("ssoio:emit",))
    assert "ssoio-backend-secret" not in repr(backend)


def test_every_problem_is_reported_with_its_key() -> None:
    raw = raw_file()
    raw["users"][1]["colour"] = "blue"
    raw["users"][2]["groups"] = ["no-slash"]
    raw["users"].append(dict(raw["users"][0]))
    raw["clients"][0]["grant_types"].append("client_credentials")
    with pytest.raises(ConfigError) as caught:
        parse_directory(raw, URL)
    paths = {problem.path for problem in caught.value.problems}
    assert {"users[1].colour", "users[2].groups[0]"} <= paths
    raw["users"][1].pop("colour")
    raw["users"][2]["groups"] = []
    with pytest.raises(ConfigError) as caught:
        parse_directory(raw, URL)
    assert {p.path for p in caught.value.problems} == {"users[5]", "clients[0].grant_types"}


def test_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_directory(tmp_path / "missing.toml", URL)
    (tmp_path / "bad.toml").write_text("[[users]\n")
    with pytest.raises(ConfigError, match="TOML syntax error"):
        load_directory(tmp_path / "bad.toml", URL)
