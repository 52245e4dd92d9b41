"""The policy's checks of a configuration, run by its loader (``config.checks``): the
requirement and room-pattern languages in single values, and cross-key checks of the
policy sections, each problem with its key path."""

from __future__ import annotations

from ssoio.config.checks import Checks
from ssoio.config.interpolation import key_path
from ssoio.config.model import Settings
from ssoio.config.policy import EventRule
from ssoio.errors import Problem
from ssoio.policy.patterns import parse_pattern
from ssoio.policy.presets import PRESETS
from ssoio.policy.requirements import parse as parse_requirement

__all__ = ["POLICY_CHECKS", "policy_problems"]

_BUILTIN_PLACEHOLDERS = frozenset({"sub", "username", "email", "groups", "roles"})


def policy_problems(settings: Settings) -> list[Problem]:
    """Every problem of the rooms, events, presence and namespace sections."""
    known = _BUILTIN_PLACEHOLDERS | _mapped_attributes(settings)
    problems = [*_rooms(settings, known), *_presence(settings), *_namespaces(settings)]
    for name, rule in settings.events.items():
        problems.extend(_event(key_path(("events", name)), rule, known))
    return problems


def _mapped_attributes(settings: Settings) -> set[str]:
    names: set[str] = set()
    for issuer in settings.issuers:
        preset = issuer.claims.preset
        # "auto" may become any preset once the provider's metadata is known
        chosen = PRESETS.values() if preset == "auto" else [PRESETS[preset]]
        for base in chosen:
            names |= set(base["attributes"])
        names |= set(issuer.claims.attributes)
    return names


def _placeholders(path: str, text: str, known: frozenset[str] | set[str]) -> list[Problem]:
    return [
        Problem(
            path,
            f"placeholder {{{name}}} is not a principal value (known: {', '.join(sorted(known))})",
        )
        for name in parse_pattern(text).placeholders
        if name not in known
    ]


def _rooms(settings: Settings, known: frozenset[str] | set[str]) -> list[Problem]:
    problems: list[Problem] = []
    for index, rule in enumerate(settings.rooms):
        path = f"rooms[{index}].pattern"
        problems.extend(_placeholders(path, rule.pattern, known))
        if rule.auto_join and parse_pattern(rule.pattern).has_wildcard:
            problems.append(
                Problem(f"rooms[{index}].auto_join", "a pattern with '*' cannot be auto-joined")
            )
    return problems


def _event(path: str, rule: EventRule, known: frozenset[str] | set[str]) -> list[Problem]:
    problems: list[Problem] = []
    if rule.deliver_as is not None and (rule.room_field is None) == (rule.target_room is None):
        problems.append(
            Problem(f"{path}.deliver_as", "needs exactly one of room_field or target_room")
        )
    if rule.room_field is not None:
        spec = rule.field_spec(rule.room_field)
        if spec is None or spec.type != "room":
            problems.append(
                Problem(f"{path}.room_field", "must name a declared field of type room")
            )
    if rule.room_action is not None and rule.room_field is None and rule.target_room is None:
        problems.append(Problem(f"{path}.room_action", "needs room_field or target_room"))
    if rule.target_room is not None:
        problems.extend(_placeholders(f"{path}.target_room", rule.target_room, known))
        if parse_pattern(rule.target_room).has_wildcard:
            problems.append(Problem(f"{path}.target_room", "cannot contain '*'"))
    if rule.sender_field in rule.fields:
        problems.append(
            Problem(f"{path}.sender_field", "is set by the server; it cannot be a declared field")
        )
    delivered = {*rule.fields, rule.sender_field}
    problems.extend(
        Problem(f"{path}.visible.{name}", "is not a delivered field")
        for name in rule.visible
        if name not in delivered
    )
    if rule.kick is not None:
        if rule.deliver_as is not None:
            problems.append(
                Problem(f"{path}.kick", "a kick event is not also relayed (deliver_as)")
            )
        spec = rule.field_spec("sub")
        if spec is None or spec.type != "string":
            problems.append(Problem(f"{path}.fields", "a kick event declares a string field sub"))
    return problems


def _presence(settings: Settings) -> list[Problem]:
    return [
        Problem(f"presence.visible.{name}", "is not one of presence.fields")
        for name in settings.presence.visible
        if name not in settings.presence.fields
    ]


def _namespaces(settings: Settings) -> list[Problem]:
    return [
        Problem(key_path(("policy", "namespaces", name)), "a namespace starts with '/'")
        for name in settings.policy.namespaces
        if not name.startswith("/")
    ]


POLICY_CHECKS = Checks(
    values={"requirement": parse_requirement, "room_pattern": parse_pattern},
    problems=(policy_problems,),
)
