"""Event rules: who may send an event, the shape of its payload, where it goes.

``validate_payload`` and ``delivered_payload`` are pure: plain data in, new data out,
inputs never mutated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ssoio.config.policy import EventRule, FieldSpec
from ssoio.errors import InvalidPayload
from ssoio.policy.decision import Decision
from ssoio.policy.patterns import Pattern, parse_pattern, room_name_problem
from ssoio.policy.principal import Principal
from ssoio.policy.requirements import Requirement, parse
from ssoio.policy.visibility import FieldVisibility

__all__ = ["CompiledEvent", "EventRules", "delivered_payload", "validate_payload"]


@dataclass(frozen=True, slots=True)
class CompiledEvent:
    name: str
    rule: EventRule
    requires: Requirement
    fields: Mapping[str, FieldSpec]
    target: Pattern | None
    visibility: FieldVisibility
    label: str  # events."name", as decisions and refusals name the rule
    allowed: Decision  # the sender's permission granted (built once, not per event)

    @property
    def room_action(self) -> str | None:
        """The permission needed on the target room (publish for a client-chosen room)."""
        if self.rule.room_action is not None:
            return self.rule.room_action
        return "publish" if self.rule.room_field else None

    @classmethod
    def compile(cls, name: str, rule: EventRule) -> CompiledEvent:
        fields = {key: spec for key in rule.fields if (spec := rule.field_spec(key))}
        requires = parse(rule.requires)
        label = f"events.{json.dumps(name, ensure_ascii=False)}"
        return cls(
            name=name,
            rule=rule,
            requires=requires,
            fields=fields,
            target=parse_pattern(rule.target_room) if rule.target_room else None,
            visibility=FieldVisibility.compile(rule.visible),
            label=label,
            allowed=Decision.allow(f"{label} allows {requires.describe()}", label),
        )


class EventRules:
    """Event rules by exact name, then wildcard patterns in configuration order."""

    def __init__(self, events: Mapping[str, EventRule]) -> None:
        compiled = [CompiledEvent.compile(name, rule) for name, rule in events.items()]
        self._exact = {e.name: e for e in compiled if "*" not in e.name.split(":")}
        self._wildcards = [
            (parse_pattern(e.name), e) for e in compiled if e.name not in self._exact
        ]

    def __iter__(self) -> Iterator[CompiledEvent]:
        return iter([*self._exact.values(), *(e for _, e in self._wildcards)])

    def find(self, name: str) -> CompiledEvent | None:
        """The rule for event ``name``, or ``None`` when the event is unknown."""
        event = self._exact.get(name)
        if event is not None or not self._wildcards:
            return event
        if room_name_problem(name) is not None:
            return None
        parts = name.split(":")
        for pattern, candidate in self._wildcards:
            if len(pattern.segments) == len(parts) and all(
                s.literal is None or s.literal == p
                for s, p in zip(pattern.segments, parts, strict=True)
            ):
                return candidate
        return None


def validate_payload(event: CompiledEvent, payload: object) -> dict[str, Any]:
    """A copy of ``payload`` holding exactly the declared fields, each checked.

    :raises InvalidPayload: not an object, an undeclared or missing field, a wrong type,
        a string too long, or an invalid room name. The message names the field.
    """
    if not event.fields and payload is None:
        return {}
    if not isinstance(payload, dict):
        raise InvalidPayload("the payload must be a JSON object")
    extra = sorted(set(payload) - set(event.fields))
    if extra:
        raise InvalidPayload(f"unexpected field {str(extra[0])[:64]!r}")
    clean: dict[str, Any] = {}
    for name, spec in event.fields.items():
        if name not in payload or payload[name] is None:
            if spec.required:
                raise InvalidPayload(f"field {name!r} is required")
            continue
        clean[name] = _checked(name, spec, payload[name])
    return clean


def _checked(name: str, spec: FieldSpec, value: Any) -> Any:
    kind = spec.type
    if kind in ("string", "room"):
        if not isinstance(value, str):
            raise InvalidPayload(f"field {name!r} must be a string")
        if len(value) > spec.max_length:
            raise InvalidPayload(f"field {name!r} is longer than {spec.max_length} characters")
        if kind == "room" and (problem := room_name_problem(value)):
            raise InvalidPayload(f"field {name!r}: {problem}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidPayload(f"field {name!r} must be true or false")
    elif isinstance(value, bool) or not isinstance(
        value, int if kind == "integer" else int | float
    ):
        raise InvalidPayload(f"field {name!r} must be an {kind}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidPayload(f"field {name!r} must be a finite number")
    return value


def delivered_payload(
    event: CompiledEvent, sender: Principal, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """What recipients of a relayed event receive (before per-recipient filtering):
    the validated fields plus the sender, stamped by the server."""
    stamp = {"sub": sender.subject, "username": sender.username or sender.subject}
    return {**payload, event.rule.sender_field: stamp}
