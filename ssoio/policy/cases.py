"""Operator-written policy test tables (``ssoio policy test FILE.toml``).

A case file names users by their claims and lists cases; each case asks one question
of the policy and states the expected answer::

    config = "ssoio.example.toml"        # relative to this file
    issuer = "primary"                   # optional: the issuer whose mapping applies

    [users.alice]                        # the claims of alice's access token
    sub = "alice"
    realm_access = { roles = ["admin"] }

    [[cases]]                            # room: join | publish | presence
    user = "alice"
    room = "staff"
    action = "join"
    expect = "allow"                     # or "deny"

    [[cases]]                            # event, with an optional payload
    user = "dave"
    event = "chat:send"
    payload = { room = "tenant:acme:general", text = "hi" }
    expect = "deny"

    [[cases]]                            # the rooms joined on connect, exactly
    user = "alice"
    auto_join = ["user:alice", "tenant:acme"]

    [[cases]]                            # an admin kick of another user
    user = "alice"
    kick = "carol"
    expect = "deny"

    [[cases]]                            # presence fields as one recipient sees them
    user = "erin"
    presence_of = ["alice"]
    visible_fields = ["sub", "username"]

    [[cases]]
    user = "alice"
    namespace = "/admin"
    expect = "deny"

``run_cases`` is pure: it takes the compiled policy and the parsed document and returns
one ``CaseResult`` per case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ssoio.errors import ClaimsInvalid, ConfigError, Problem, SsoioError
from ssoio.policy.engine import Policy
from ssoio.policy.principal import Principal

__all__ = ["CaseResult", "run_cases"]

_KINDS = ("room", "event", "auto_join", "kick", "presence_of", "namespace")


@dataclass(frozen=True, slots=True)
class CaseResult:
    index: int
    summary: str
    passed: bool
    detail: str


def run_cases(policy: Policy, document: Mapping[str, Any]) -> list[CaseResult]:
    """Run every case of ``document`` against ``policy``.

    :raises ConfigError: the document itself is malformed (problems with key paths).
    """
    issuer = document.get("issuer", policy.settings.issuers[0].name)
    principals = _principals(policy, document.get("users", {}), issuer)
    cases = document.get("cases", [])
    if not isinstance(cases, list) or not cases:
        raise ConfigError([Problem("cases", "the file has no [[cases]]")])
    problems: list[Problem] = []
    results: list[CaseResult] = []
    for index, case in enumerate(cases):
        try:
            results.append(_run(policy, principals, index, case))
        except _CaseError as exc:
            problems.append(Problem(f"cases[{index}]", str(exc)))
    if problems:
        raise ConfigError(problems)
    return results


class _CaseError(Exception):
    pass


def _principals(policy: Policy, users: object, issuer: str) -> dict[str, Principal]:
    if not isinstance(users, dict):
        raise ConfigError([Problem("users", "must be a table of users and their claims")])
    principals: dict[str, Principal] = {}
    problems: list[Problem] = []
    for name, claims in users.items():
        try:
            principals[name] = policy.principal_from_claims({"sub": name, **claims}, issuer)
        except (ClaimsInvalid, TypeError) as exc:
            problems.append(Problem(f"users.{name}", str(exc)))
    if problems:
        raise ConfigError(problems)
    return principals


def _run(
    policy: Policy, principals: Mapping[str, Principal], index: int, case: object
) -> CaseResult:
    if not isinstance(case, dict):
        raise _CaseError("a case is a table")
    user = principals.get(case.get("user", ""))
    if user is None:
        raise _CaseError(f"user {case.get('user')!r} is not in [users]")
    kinds = [kind for kind in _KINDS if kind in case]
    if len(kinds) != 1:
        raise _CaseError(f"a case asks exactly one of: {', '.join(_KINDS)}")
    return _RUNNERS[kinds[0]](policy, principals, user, index, case)


def _expect(case: Mapping[str, Any]) -> bool:
    expect = case.get("expect")
    if expect not in ("allow", "deny"):
        raise _CaseError('expect is "allow" or "deny"')
    return bool(expect == "allow")


def _verdict(index: int, summary: str, expected: bool, allowed: bool, reason: str) -> CaseResult:
    got = "allow" if allowed else "deny"
    want = "allow" if expected else "deny"
    return CaseResult(index, summary, expected == allowed, f"expected {want}, got {got}: {reason}")


def _room_case(
    policy: Policy, _p: Mapping[str, Principal], user: Principal, index: int, case: dict[str, Any]
) -> CaseResult:
    action = case.get("action", "join")
    if action not in ("join", "publish", "presence"):
        raise _CaseError("action is join, publish or presence")
    decision = policy.room(user, str(case["room"]), action)
    summary = f"{case['user']} {action} {case['room']!r}"
    return _verdict(index, summary, _expect(case), decision.allowed, decision.reason)


def _event_case(
    policy: Policy, _p: Mapping[str, Principal], user: Principal, index: int, case: dict[str, Any]
) -> CaseResult:
    name = str(case["event"])
    summary = f"{case['user']} sends {name!r}"
    try:
        authorized = policy.authorize_event(user, name, case.get("payload", {}))
    except SsoioError as refusal:
        return _verdict(index, summary, _expect(case), False, f"{refusal.code}: {refusal.message}")
    return _verdict(index, summary, _expect(case), True, authorized.decision.reason)


def _auto_join_case(
    policy: Policy, _p: Mapping[str, Principal], user: Principal, index: int, case: dict[str, Any]
) -> CaseResult:
    rooms = list(policy.auto_join(user))
    expected = case["auto_join"]
    summary = f"{case['user']} auto-joins"
    return CaseResult(index, summary, rooms == expected, f"expected {expected}, got {rooms}")


def _kick_case(
    policy: Policy, principals: Mapping[str, Principal], user: Principal, index: int,
    case: dict[str, Any],
) -> CaseResult:  # fmt: skip
    target = principals.get(case["kick"])
    if target is None:
        raise _CaseError(f"kick target {case['kick']!r} is not in [users]")
    summary = f"{case['user']} kicks {case['kick']}"
    event_name = case.get("event_name", "admin:kick")
    try:
        authorized = policy.authorize_event(user, event_name, {"sub": target.subject})
    except SsoioError as refusal:
        return _verdict(index, summary, _expect(case), False, refusal.message)
    decision = policy.may_kick(authorized.event, user, target)
    return _verdict(index, summary, _expect(case), decision.allowed, decision.reason)


def _presence_case(
    policy: Policy, principals: Mapping[str, Principal], user: Principal, index: int,
    case: dict[str, Any],
) -> CaseResult:  # fmt: skip
    members = [principals[name] for name in case["presence_of"] if name in principals]
    view = policy.presence_view(user, members)
    seen = sorted({field for member in view for field in member})
    expected = sorted(case.get("visible_fields", []))
    summary = f"{case['user']} lists presence of {', '.join(case['presence_of'])}"
    return CaseResult(index, summary, seen == expected, f"expected fields {expected}, got {seen}")


def _namespace_case(
    policy: Policy, _p: Mapping[str, Principal], user: Principal, index: int, case: dict[str, Any]
) -> CaseResult:
    decision = policy.namespace(user, str(case["namespace"]))
    summary = f"{case['user']} connects to {case['namespace']!r}"
    return _verdict(index, summary, _expect(case), decision.allowed, decision.reason)


_RUNNERS: dict[str, Callable[..., CaseResult]] = {
    "room": _room_case,
    "event": _event_case,
    "auto_join": _auto_join_case,
    "kick": _kick_case,
    "presence_of": _presence_case,
    "namespace": _namespace_case,
}
