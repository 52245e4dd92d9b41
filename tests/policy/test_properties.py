"""Property tests: placeholder injection, total decisions, field filtering."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ssoio.errors import ClaimsInvalid, SsoioError
from ssoio.policy.engine import Policy
from ssoio.policy.patterns import room_name_problem
from ssoio.policy.principal import Principal, encode_segment
from ssoio.policy.rooms import Action
from ssoio.policy.visibility import FieldVisibility
from tests.policy.conftest import claims_of

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Claim values biased towards pattern syntax and separators.
hostile_text = st.text(alphabet=st.sampled_from("acme:*{}%/ \\.\x00é"), max_size=12) | st.text()
room_like = st.text(alphabet=st.sampled_from("tenant:acme*{}%gl \x00"), max_size=24) | st.text()


def tenant_principal(policy: Policy, tenant: Any) -> Principal | None:
    try:
        return policy.principal_from_claims({**claims_of("erin"), "tenant": tenant}, "primary")
    except ClaimsInvalid:
        return None


@settings(max_examples=300, deadline=None)
@given(tenant=hostile_text)
def test_no_claim_value_widens_access(policy: Policy, tenant: str) -> None:
    erin = tenant_principal(policy, tenant)
    assert erin is not None
    own = encode_segment(tenant)
    rooms = ["tenant:acme", "tenant:acme:general", "tenant:globex:general", "staff",
             f"tenant:{tenant}", f"tenant:{tenant}:general", f"tenant:acme:{tenant}",
             f"tenant:{own}", f"tenant:{own}:general"]  # fmt: skip
    for room in rooms:
        segments = room.split(":")
        expected = (
            room_name_problem(room) is None
            and tenant != ""
            and segments[:2] == ["tenant", own]
            and len(segments) in (2, 3)
        )
        assert policy.room(erin, room, "join").allowed is expected, (tenant, room)


@settings(max_examples=300, deadline=None)
@given(claims=st.dictionaries(st.sampled_from(
    ["sub", "preferred_username", "email", "realm_access", "groups", "tenant", "scope", "name",
     "sid", "azp", "exp"]), json_values, max_size=11))  # fmt: skip
def test_mapping_arbitrary_claims_never_crashes(policy: Policy, claims: dict[str, Any]) -> None:
    try:
        principal = policy.principal_from_claims({"sub": "x", **claims}, "primary")
    except ClaimsInvalid:  # the one expected refusal; anything else fails the property
        return
    assert isinstance(principal.subject, str)
    policy.auto_join(principal)


@settings(max_examples=300, deadline=None)
@given(room=room_like, action=st.sampled_from(["join", "publish", "presence"]))
def test_room_decisions_are_total(policy: Policy, room: str, action: Any) -> None:
    alice = policy.principal_from_claims(claims_of("alice"), "primary")
    first = policy.room(alice, room, action)
    assert first == policy.room(alice, room, action)  # deterministic
    assert first.reason


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(max_size=30) | st.sampled_from(["chat:send", "admin:kick"]), payload=json_values
)
def test_event_checks_raise_only_wire_errors(policy: Policy, name: str, payload: Any) -> None:
    alice = policy.principal_from_claims(claims_of("alice"), "primary")
    codes = set()
    try:
        policy.authorize_event(alice, name, payload)
    except SsoioError as refusal:
        codes.add(refusal.code)
    assert codes <= {"unknown_event", "invalid_payload", "forbidden"}


@settings(max_examples=300, deadline=None)
@given(
    payload=st.dictionaries(st.sampled_from(["email", "text", "from", "secret"]), json_values),
    roles=st.sets(st.sampled_from(["staff", "admin", "auditor"])),
)
def test_field_filtering_never_leaks_and_never_mutates(
    payload: dict[str, Any], roles: set[str]
) -> None:
    visibility = FieldVisibility.compile(
        {"email": "role:staff", "secret": {"all": ["role:admin", "role:auditor"]}}
    )
    recipient = Principal(issuer="x", subject="r", roles=frozenset(roles))
    before = copy.deepcopy(payload)
    shown = visibility.filter(recipient, payload)
    assert payload == before
    assert ("email" in shown) <= ("staff" in roles)
    assert ("secret" in shown) <= ({"admin", "auditor"} <= roles)
    assert set(shown) <= set(payload)
    assert all(shown[k] == payload[k] for k in shown)


@settings(max_examples=200, deadline=None)
@given(tenant=hostile_text, room=room_like)
def test_remembered_room_decisions_are_the_rules_own(
    policy: Policy, tenant: str, room: str
) -> None:
    """``Policy.room`` remembers decisions per principal object: asked again, or for
    another principal of the same subject (a refresh with other claims), it answers as
    the rules do."""
    erin = tenant_principal(policy, tenant)
    acme = tenant_principal(policy, "acme")
    assert erin is not None
    assert acme is not None
    actions: tuple[Action, ...] = ("join", "publish", "presence")
    for principal in (erin, acme, erin, acme):
        for action in actions:
            decided = policy.rooms.decide(principal, room, action)
            assert policy.room(principal, room, action) == decided
