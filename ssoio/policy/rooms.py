"""Room rules, compiled once into a segment trie: deny by default, flat as rules grow.

A room is allowed for an action when some rule's pattern, expanded with the
principal's own values, matches the room name and the rule's requirement for that
action holds. Lookup walks the trie by the room's segments, so an exact room name costs
the same with ten rules or ten thousand; only rules that could match are examined.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ssoio.config.policy import RoomRule
from ssoio.policy.decision import Decision
from ssoio.policy.patterns import Pattern, parse_pattern, room_name_problem
from ssoio.policy.principal import Principal, encode_segment
from ssoio.policy.requirements import Requirement, parse

__all__ = ["Action", "CompiledRoomRule", "RoomRules", "expand"]

Action = Literal["join", "publish", "presence"]


@dataclass(frozen=True, slots=True)
class CompiledRoomRule:
    index: int
    pattern: Pattern
    join: Requirement
    publish: Requirement
    presence: Requirement
    auto_join: bool

    @property
    def label(self) -> str:
        return f"rooms[{self.index}] {self.pattern.text!r}"

    @classmethod
    def compile(cls, index: int, rule: RoomRule) -> CompiledRoomRule:
        join = parse(rule.join)
        return cls(
            index=index,
            pattern=parse_pattern(rule.pattern),
            join=join,
            publish=parse(rule.publish),
            presence=join if rule.presence is None else parse(rule.presence),
            auto_join=rule.auto_join,
        )

    def requirement(self, action: Action) -> Requirement:
        return {"join": self.join, "publish": self.publish, "presence": self.presence}[action]

    def matches(self, segments: list[str], principal: Principal) -> bool:
        """Placeholders hold the principal's own (encoded) values; literals were
        already matched by the trie walk."""
        for segment, part in zip(self.pattern.segments, segments, strict=True):
            if segment.placeholder is not None and part not in _encoded(
                principal, segment.placeholder
            ):
                return False
        return True


def _encoded(principal: Principal, name: str) -> Iterable[str]:
    return [encode_segment(value) for value in principal.values(name) if value]


@dataclass(slots=True)
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    variable: _Node | None = None  # '*' and placeholders: any one segment
    rules: list[CompiledRoomRule] = field(default_factory=list)


class RoomRules:
    """Every room rule of a configuration, indexed for lookup by room name."""

    def __init__(self, rules: Iterable[RoomRule]) -> None:
        self.rules = tuple(CompiledRoomRule.compile(i, rule) for i, rule in enumerate(rules))
        self._root = _Node()
        for rule in self.rules:
            self._insert(rule)

    def _insert(self, rule: CompiledRoomRule) -> None:
        node = self._root
        for segment in rule.pattern.segments:
            if segment.literal is not None:
                node = node.literals.setdefault(segment.literal, _Node())
            else:
                node.variable = node = node.variable or _Node()
        node.rules.append(rule)

    def candidates(self, segments: list[str]) -> list[CompiledRoomRule]:
        """Rules whose literals match ``segments``, in configuration order."""
        nodes = [self._root]
        for part in segments:
            step: list[_Node] = []
            for node in nodes:
                child = node.literals.get(part)
                if child is not None:
                    step.append(child)
                if node.variable is not None:
                    step.append(node.variable)
            if not step:
                return []
            nodes = step
        found = [rule for node in nodes for rule in node.rules]
        if len(nodes) > 1:
            found.sort(key=lambda rule: rule.index)
        return found

    def decide(self, principal: Principal, room: str, action: Action) -> Decision:
        """May ``principal`` do ``action`` on ``room``? Deny by default."""
        problem = room_name_problem(room)
        if problem is not None:
            return Decision.deny(problem)
        segments = room.split(":")
        refusal: Decision | None = None
        for rule in self.candidates(segments):
            if not rule.matches(segments, principal):
                continue
            requirement = rule.requirement(action)
            if requirement(principal):
                reason = f"{rule.label} allows {action} to {requirement.describe()}"
                return Decision.allow(reason, rule.label)
            if refusal is None:  # the first matching rule explains the denial
                reason = f"{rule.label} allows {action} only to {requirement.describe()}"
                refusal = Decision.deny(reason, rule.label)
        if refusal is None:
            refusal = Decision.deny(f"no room rule gives this principal {room!r}")
        return refusal

    def auto_join(self, principal: Principal, limit: int) -> tuple[str, ...]:
        """The rooms joined on connect: auto-join rules expanded with the principal's
        values, where the principal meets the join requirement; at most ``limit``."""
        rooms: list[str] = []
        for rule in self.rules:
            if rule.auto_join and rule.join(principal):
                rooms.extend(r for r in expand(rule.pattern, principal, limit) if r not in rooms)
        return tuple(rooms[:limit])


def expand(pattern: Pattern, principal: Principal, limit: int) -> list[str]:
    """Up to ``limit`` concrete room names of a wildcard-free pattern for ``principal``
    (none when a placeholder has no value; ``*`` never expands)."""
    choices = [
        [segment.literal]
        if segment.literal is not None
        else sorted(_encoded(principal, segment.placeholder or ""))
        for segment in pattern.segments
    ]
    return [":".join(parts) for parts in itertools.islice(itertools.product(*choices), limit)]
