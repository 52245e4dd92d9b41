"""Policy fixtures: the example configuration and the reference users' principals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ssoio.policy.engine import Policy
from ssoio.policy.principal import Principal
from ssoio.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "ssoio.example.toml"

# Keycloak-shaped access-token claims of the reference scenario (DESIGN.md).
REFERENCE_CLAIMS: dict[str, dict[str, Any]] = {
    "alice": {"roles": ["admin", "staff"], "groups": ["/eng"], "tenant": "acme", "chat": True},
    "bob": {"roles": ["staff"], "groups": ["/sales"], "tenant": "acme", "chat": True},
    "carol": {"roles": [], "groups": [], "tenant": "globex", "chat": True},
    "dave": {"roles": ["staff"], "groups": ["/eng"], "tenant": "acme", "chat": False},
    "erin": {"roles": [], "groups": ["/sales"], "tenant": "acme", "chat": True},
}


def claims_of(user: str) -> dict[str, Any]:
    spec = REFERENCE_CLAIMS[user]
    return {
        "sub": user,
        "preferred_username": user,
        "email": f"{user}@{spec['tenant']}.example",
        "realm_access": {"roles": spec["roles"]},
        "groups": spec["groups"],
        "tenant": spec["tenant"],
        "scope": "openid profile email" + (" chat" if spec["chat"] else ""),
        "exp": 1_900_000_000,
    }


@pytest.fixture(scope="session")
def policy() -> Policy:
    return Policy(load_settings(EXAMPLE, env={}))


@pytest.fixture(scope="session")
def users(policy: Policy) -> dict[str, Principal]:
    return {
        user: policy.principal_from_claims(claims_of(user), "primary") for user in REFERENCE_CLAIMS
    }
