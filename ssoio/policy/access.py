"""Everything the loaded policy says about one principal, rule by rule: the table of the
admin access page (``ssoio explain`` asks one question at a time; this asks them all).

Each room rule is asked about one concrete room of its pattern for this principal
(placeholders filled with the principal's own first value, ``*`` with ``example``), for
each action; each event rule about sending that event.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssoio.policy.decision import Decision
from ssoio.policy.engine import Policy
from ssoio.policy.patterns import Pattern
from ssoio.policy.principal import Principal, encode_segment
from ssoio.policy.rooms import Action

__all__ = ["AccessRow", "access_table"]

_ACTIONS: tuple[Action, ...] = ("join", "publish", "presence")


@dataclass(frozen=True, slots=True)
class AccessRow:
    rule: str  # the room pattern or event name as configured
    question: str  # "join tenant:acme:general", "send chat:send"
    decision: Decision


def access_table(policy: Policy, principal: Principal) -> list[AccessRow]:
    """One row per room rule and action, then one per event rule."""
    rows = []
    for rule in policy.rooms.rules:
        room = sample_room(rule.pattern, principal)
        for action in _ACTIONS:
            decision = policy.room(principal, room, action)
            rows.append(AccessRow(rule.pattern.text, f"{action} {room}", decision))
    for name in sorted(policy.settings.events):
        rows.append(AccessRow(name, f"send {name}", policy.may_send(principal, name)))
    return rows


def sample_room(pattern: Pattern, principal: Principal) -> str:
    """A room of ``pattern`` this principal could name (``{placeholder}`` kept when the
    principal has no value for it: the decision then says no rule gives it)."""
    parts = []
    for segment in pattern.segments:
        if segment.literal is not None:
            parts.append(segment.literal)
        elif segment.placeholder is not None:
            values = sorted(v for v in principal.values(segment.placeholder) if v)
            parts.append(encode_segment(values[0]) if values else f"{{{segment.placeholder}}}")
        else:
            parts.append("example")
    return ":".join(parts)
