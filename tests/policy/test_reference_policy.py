"""The reference scenario of DESIGN.md, decided by the example configuration's policy."""

from __future__ import annotations

from typing import Any

import pytest

from ssoio.errors import Forbidden, InvalidPayload, SsoioError, UnknownEvent
from ssoio.policy.engine import Policy
from ssoio.policy.principal import Principal
from ssoio.policy.rooms import Action

ALL = ("alice", "bob", "carol", "dave", "erin")
ACME = ("alice", "bob", "dave", "erin")


def rooms_table() -> list[tuple[str, str, Action, bool]]:
    cases: list[tuple[str, str, Action, bool]] = []
    for user in ALL:
        tenant = "globex" if user == "carol" else "acme"
        other = "acme" if user == "carol" else "globex"
        cases += [
            (user, f"user:{user}", "join", True),
            (user, "user:mallory", "join", False),
            (user, f"user:{user}", "publish", False),
            (user, f"tenant:{tenant}", "join", True),
            (user, f"tenant:{other}", "join", False),
            (user, f"tenant:{tenant}", "publish", False),
            (user, f"tenant:{tenant}:general", "join", True),
            (user, f"tenant:{tenant}:general", "publish", True),
            (user, f"tenant:{tenant}:general", "presence", True),
            (user, f"tenant:{other}:general", "join", False),
            (user, f"tenant:{other}:general", "publish", False),
            (user, f"tenant:{other}:general", "presence", False),
            (user, "staff", "join", user in ("alice", "bob", "dave")),
            (user, "staff", "publish", user in ("alice", "bob", "dave")),
            (user, "lobby", "join", False),  # no rule covers it: deny by default
        ]
    return cases


@pytest.mark.parametrize(("user", "room", "action", "allowed"), rooms_table())
def test_rooms(
    policy: Policy, users: dict[str, Principal], user: str, room: str, action: Action,
    allowed: bool,
) -> None:  # fmt: skip
    decision = policy.room(users[user], room, action)
    assert decision.allowed is allowed, decision.reason
    assert decision.reason


@pytest.mark.parametrize("user", ALL)
def test_auto_join(policy: Policy, users: dict[str, Principal], user: str) -> None:
    tenant = "globex" if user == "carol" else "acme"
    assert policy.auto_join(users[user]) == (f"user:{user}", f"tenant:{tenant}")


CHAT = {"room": "tenant:acme:general", "text": "hello"}


@pytest.mark.parametrize(
    ("user", "event", "payload", "outcome"),
    [
        *[(u, "chat:send", CHAT, "allow" if u != "dave" else Forbidden) for u in ACME],
        ("carol", "chat:send", CHAT, Forbidden),  # another tenant's room
        ("carol", "chat:send", {"room": "tenant:globex:general", "text": "hi"}, "allow"),
        ("alice", "chat:send", {"room": "staff", "text": "hi"}, "allow"),  # staff may publish
        ("erin", "chat:send", {"room": "staff", "text": "hi"}, Forbidden),
        ("alice", "chat:send", {"room": "lobby", "text": "hi"}, Forbidden),
        ("alice", "chat:send", {"room": "tenant:acme:general"}, InvalidPayload),
        ("alice", "chat:send", {**CHAT, "from": {"sub": "bob"}}, InvalidPayload),
        ("alice", "chat:send", {**CHAT, "text": "x" * 2001}, InvalidPayload),
        ("alice", "chat:send", {**CHAT, "room": "tenant:*:general"}, InvalidPayload),
        ("alice", "chat:send", ["tenant:acme:general", "hi"], InvalidPayload),
        ("alice", "broadcast_announcement", {"text": "release at 5"}, "allow"),
        *[(u, "broadcast_announcement", {"text": "x"}, Forbidden) for u in ALL[1:]],
        ("alice", "admin:kick", {"sub": "erin"}, "allow"),
        *[(u, "admin:kick", {"sub": "alice"}, Forbidden) for u in ALL[1:]],
        ("alice", "orders:update", {}, UnknownEvent),
        ("alice", "connect", {}, UnknownEvent),
    ],
)
def test_events(
    policy: Policy, users: dict[str, Principal], user: str, event: str, payload: Any,
    outcome: str | type[SsoioError],
) -> None:  # fmt: skip
    if outcome == "allow":
        authorized = policy.authorize_event(users[user], event, payload)
        assert authorized.decision.allowed
    else:
        assert not isinstance(outcome, str)
        with pytest.raises(outcome):
            policy.authorize_event(users[user], event, payload)


def test_announcement_goes_to_the_senders_tenant(
    policy: Policy, users: dict[str, Principal]
) -> None:
    authorized = policy.authorize_event(users["alice"], "broadcast_announcement", {"text": "x"})
    assert authorized.room == "tenant:acme"
    assert authorized.event.rule.deliver_as == "announcement"


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [("alice", "erin", True), ("alice", "bob", True), ("alice", "carol", False)],
)
def test_kick_within_the_same_tenant(
    policy: Policy, users: dict[str, Principal], actor: str, target: str, allowed: bool
) -> None:
    event = policy.events.find("admin:kick")
    assert event is not None
    assert policy.may_kick(event, users[actor], users[target]).allowed is allowed


@pytest.mark.parametrize(
    ("recipient", "sees_email"),
    [("alice", True), ("bob", True), ("dave", True), ("erin", False), ("carol", False)],
)
def test_presence_emails_only_for_staff(
    policy: Policy, users: dict[str, Principal], recipient: str, sees_email: bool
) -> None:
    members = [users["alice"], users["erin"]]
    view = policy.presence_view(users[recipient], members)
    assert [m["sub"] for m in view] == ["alice", "erin"]
    assert [m["username"] for m in view] == ["alice", "erin"]
    assert all(("email" in m) is sees_email for m in view)


@pytest.mark.parametrize(("namespace", "allowed"), [("/", True), ("/admin", False)])
def test_namespaces(
    policy: Policy, users: dict[str, Principal], namespace: str, allowed: bool
) -> None:
    decision = policy.namespace(users["alice"], namespace)
    assert decision.allowed is allowed
    assert decision.code == ("ok" if allowed else "namespace_forbidden")


def test_decisions_name_their_rule(policy: Policy, users: dict[str, Principal]) -> None:
    allowed = policy.room(users["bob"], "staff", "join")
    assert allowed.rule == "rooms[3] 'staff'"
    assert allowed.reason == "rooms[3] 'staff' allows join to role:staff"
    denied = policy.room(users["erin"], "staff", "join")
    assert denied.rule == "rooms[3] 'staff'"
    assert denied.reason == "rooms[3] 'staff' allows join only to role:staff"
    uncovered = policy.room(users["erin"], "lobby", "join")
    assert uncovered.rule is None
    assert "no room rule" in uncovered.reason
