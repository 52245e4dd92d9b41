"""Room patterns and the room-rule trie: exact, wildcard, placeholder, deny by default."""

from __future__ import annotations

from typing import Any

import pytest

from ssoio.errors import ConfigError
from ssoio.policy.engine import Policy
from ssoio.policy.patterns import parse_pattern, room_name_problem
from ssoio.policy.principal import Principal, encode_segment
from ssoio.settings import validate_raw

ISSUER = {
    "name": "kc",
    "issuer": "https://idp.test",
    "audiences": ["api"],
    "claims": {"preset": "keycloak", "attributes": {"tenant": "tenant", "region": "region"}},
}


def policy_of(*rooms: dict[str, Any], **extra: Any) -> Policy:
    return Policy(validate_raw({"issuers": [ISSUER], "rooms": list(rooms), **extra}, {}))


def principal(**attributes: Any) -> Principal:
    groups = attributes.pop("groups", ())
    return Principal(
        issuer="kc",
        subject=attributes.pop("sub", "alice"),
        groups=frozenset(groups),
        roles=frozenset(attributes.pop("roles", ())),
        attributes={k: tuple(v) if isinstance(v, list) else (v,) for k, v in attributes.items()},
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("tenant:acme:general", None),
        ("staff", None),
        ("ünïcödé:raum", None),
        ("", "1 to 200"),
        ("x" * 201, "1 to 200"),
        (None, "a string"),
        (["staff"], "a string"),
        ("tenant::general", "non-empty"),
        (":staff", "non-empty"),
        ("staff:", "non-empty"),
        ("tenant:*", "'*'"),
        ("{sub}", "'{'"),
        ("has space", "spaces"),
        ("tab\there", "spaces"),
        ("nul\x00", "control"),
        ("line\nbreak", "spaces"),
        (":".join("a" * 17), "16"),
    ],
)
def test_room_names(name: Any, problem: str | None) -> None:
    found = room_name_problem(name)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    "pattern", ["a::b", "", "a:{Tenant}", "a:{x-y}", "a:b*", "a:{sub}x", "a b", "x" * 201]
)
def test_invalid_patterns(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"segment|room pattern"):
        parse_pattern(pattern)


def test_pattern_mistakes_are_config_problems() -> None:
    with pytest.raises(ConfigError) as caught:
        policy_of(
            {"pattern": "a:b*", "join": "authenticated"},
            {"pattern": "team:{tennant}", "join": "authenticated"},
            {"pattern": "x:*", "join": "role", "auto_join": True},
        )
    assert [p.path for p in caught.value.problems] == [
        "rooms[0].pattern",
        "rooms[2].join",
    ]
    with pytest.raises(ConfigError) as caught:
        policy_of(
            {"pattern": "team:{tennant}", "join": "authenticated"},
            {"pattern": "x:*", "join": "authenticated", "auto_join": True},
        )
    assert [str(p) for p in caught.value.problems] == [
        "rooms[0].pattern: placeholder {tennant} is not a principal value "
        "(known: email, groups, region, roles, sub, tenant, username)",
        "rooms[1].auto_join: a pattern with '*' cannot be auto-joined",
    ]


class TestMatching:
    """Literals, '*' (one segment) and placeholders (one of the principal's values)."""

    @pytest.mark.parametrize(
        ("pattern", "room", "allowed"),
        [
            ("staff", "staff", True),
            ("staff", "Staff", False),
            ("staff", "staff:x", False),
            ("team:*", "team:a", True),
            ("team:*", "team", False),
            ("team:*", "team:a:b", False),
            ("*:lobby", "any:lobby", True),
            ("tenant:{tenant}:*", "tenant:acme:general", True),
            ("tenant:{tenant}:*", "tenant:globex:general", False),
            ("tenant:{tenant}:*", "tenant:acme", False),
            ("group:{groups}", "group:eng", True),
            ("group:{groups}", "group:ops", True),
            ("group:{groups}", "group:sales", False),
            ("user:{sub}", "user:alice", True),
            ("user:{sub}", "user:bob", False),
            ("region:{region}", "region:eu", False),  # no value: never matches
        ],
    )
    def test_single_rule(self, pattern: str, room: str, allowed: bool) -> None:
        policy = policy_of({"pattern": pattern, "join": "authenticated"})
        alice = principal(tenant="acme", groups=["eng", "ops"])
        assert policy.room(alice, room, "join").allowed is allowed

    def test_any_matching_rule_may_allow(self) -> None:
        policy = policy_of(
            {"pattern": "proj:*", "join": "role:lead"},
            {"pattern": "proj:apollo", "join": "group:apollo"},
        )
        member = principal(groups=["apollo"])
        assert policy.room(member, "proj:apollo", "join").rule == "rooms[1] 'proj:apollo'"
        denied = policy.room(member, "proj:gemini", "join")
        assert denied.rule == "rooms[0] 'proj:*'"
        assert not denied.allowed

    def test_lookup_examines_only_rules_that_can_match(self) -> None:
        rooms = [{"pattern": f"project-{i}", "join": "authenticated"} for i in range(5000)]
        rooms.append({"pattern": "tenant:{tenant}:*", "join": "authenticated"})
        policy = policy_of(*rooms)
        assert [r.index for r in policy.rooms.candidates(["project-4321"])] == [4321]
        assert [r.index for r in policy.rooms.candidates(["tenant", "acme", "x"])] == [5000]
        assert policy.rooms.candidates(["nowhere"]) == []

    def test_publish_defaults_to_nobody_and_presence_to_join(self) -> None:
        policy = policy_of({"pattern": "staff", "join": "role:staff"})
        staff, guest = principal(roles=["staff"]), principal()
        assert not policy.room(staff, "staff", "publish").allowed
        assert policy.room(staff, "staff", "presence").allowed
        assert not policy.room(guest, "staff", "presence").allowed


class TestPlaceholderInjection:
    """A claim value is one literal segment: pattern syntax in it never widens access."""

    @pytest.mark.parametrize(
        ("tenant", "room"),
        [
            ("*", "tenant:acme:general"),
            ("acme:x", "tenant:acme:x"),
            ("acme:x", "tenant:acme:x:general"),
            ("{tenant}", "tenant:acme:general"),
            ("acme%3Ax", "tenant:acme:x"),
            ("", "tenant::general"),
            ("acme ", "tenant:acme:general"),
        ],
    )
    def test_hostile_tenant_claims(self, tenant: str, room: str) -> None:
        policy = policy_of(
            {"pattern": "tenant:{tenant}", "join": "authenticated"},
            {"pattern": "tenant:{tenant}:*", "join": "authenticated"},
        )
        assert not policy.room(principal(tenant=tenant), room, "join").allowed

    def test_hostile_value_names_only_its_own_encoded_room(self) -> None:
        policy = policy_of(
            {"pattern": "tenant:{tenant}", "join": "authenticated", "auto_join": True}
        )
        mallory = principal(tenant="acme:x")
        assert policy.auto_join(mallory) == ("tenant:acme%3Ax",)
        assert policy.room(mallory, "tenant:acme%3Ax", "join").allowed

    @pytest.mark.parametrize(
        ("value", "encoded"),
        [("acme", "acme"), ("a:b", "a%3Ab"), ("*", "%2A"), ("%3A", "%253A"), ("{x}", "%7Bx%7D")],
    )
    def test_encoding_is_injective(self, value: str, encoded: str) -> None:
        assert encode_segment(value) == encoded


class TestAutoJoin:
    """Auto-join rules expand with the principal's values, bounded and deterministic."""

    def test_multi_valued_placeholders_and_requirements(self) -> None:
        policy = policy_of(
            {"pattern": "group:{groups}", "join": "authenticated", "auto_join": True},
            {"pattern": "staff", "join": "role:staff", "auto_join": True},
            {"pattern": "user:{sub}", "join": "authenticated", "auto_join": True},
        )
        alice = principal(groups=["ops", "eng"], roles=["staff"])
        assert policy.auto_join(alice) == ("group:eng", "group:ops", "staff", "user:alice")
        assert policy.auto_join(principal()) == ("user:alice",)

    def test_limit(self) -> None:
        policy = policy_of(
            {"pattern": "group:{groups}", "join": "authenticated", "auto_join": True},
            policy={"max_auto_join_rooms": 3},
        )
        many = principal(groups=[f"g{i:03}" for i in range(500)])
        assert policy.auto_join(many) == ("group:g000", "group:g001", "group:g002")
