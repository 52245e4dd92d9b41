"""Requirement expressions: parsed strictly, evaluated purely."""

from __future__ import annotations

from typing import Any

import pytest

from ssoio.policy.principal import Principal
from ssoio.policy.requirements import parse

ALICE = Principal(
    issuer="primary",
    subject="alice",
    roles=frozenset({"admin", "staff"}),
    groups=frozenset({"eng"}),
    scopes=frozenset({"openid", "chat"}),
    attributes={"tenant": ("acme",)},
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("authenticated", True),
        ("nobody", False),
        ("role:admin", True),
        ("role:Admin", False),  # case-sensitive, like the claims
        ("role:auditor", False),
        ("group:eng", True),
        ("group:/eng", True),  # Keycloak path form
        ("group:/eng/", True),
        ("group:sales", False),
        ("scope:chat", True),
        ("scope:ssoio:emit", False),
        ("attr:tenant=acme", True),
        ("attr:tenant=globex", False),
        ("attr:region=eu", False),
        ({"any": ["role:auditor", "scope:chat"]}, True),
        ({"any": ["role:auditor", "scope:emit"]}, False),
        ({"all": ["role:admin", "attr:tenant=acme"]}, True),
        ({"all": ["role:admin", "attr:tenant=globex"]}, False),
        ({"not": "role:admin"}, False),
        ({"not": {"not": "role:admin"}}, True),
        ({"all": [{"any": ["group:sales", "group:eng"]}, {"not": "scope:emit"}]}, True),
    ],
)
def test_evaluation(spec: Any, expected: bool) -> None:
    assert parse(spec)(ALICE) is expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("admin", "unknown requirement"),
        ("role:", "unknown requirement"),
        ("role:  ", "unknown requirement"),
        ("rol:admin", "unknown requirement kind"),
        ("attr:tenant", "attr:NAME=VALUE"),
        ("attr:=acme", "attr:NAME=VALUE"),
        (["role:admin"], "a list is ambiguous"),
        ({"any": []}, "non-empty list"),
        ({"any": "role:admin"}, "non-empty list"),
        ({"either": ["role:a"]}, "exactly one key"),
        ({"any": ["role:a"], "all": ["role:b"]}, "exactly one key"),
        (42, "not int"),
        (None, "not NoneType"),
    ],
)
def test_invalid_specs(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(spec)


def test_nesting_is_bounded() -> None:
    spec: Any = "role:admin"
    for _ in range(10):
        spec = {"not": spec}
    with pytest.raises(ValueError, match="nest deeper"):
        parse(spec)


def test_describe_is_readable() -> None:
    spec = {"all": ["role:admin", {"not": "group:/sales"}]}
    assert parse(spec).describe() == "all(role:admin, not group:/sales)"
