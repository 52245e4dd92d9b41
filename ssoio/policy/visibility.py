"""Field visibility: server-side data filtering, per recipient.

A field listed with a requirement is delivered only to recipients that meet it; other
fields go to everyone who receives the message. A client never receives what it may
not see, whichever node delivers the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ssoio.policy.principal import Principal
from ssoio.policy.requirements import Requirement, parse

__all__ = ["FieldVisibility"]


@dataclass(frozen=True, slots=True)
class FieldVisibility:
    """Compiled ``visible = { field = requirement }`` rules."""

    rules: tuple[tuple[str, Requirement], ...] = ()

    @classmethod
    def compile(cls, visible: Mapping[str, Any]) -> FieldVisibility:
        return cls(tuple((name, parse(spec)) for name, spec in visible.items()))

    def hidden_from(self, recipient: Principal) -> frozenset[str]:
        """The fields ``recipient`` may not see."""
        return frozenset(name for name, requirement in self.rules if not requirement(recipient))

    def filter(self, recipient: Principal, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A new dict: ``payload`` without the fields hidden from ``recipient``."""
        hidden = self.hidden_from(recipient) if self.rules else frozenset()
        return {key: value for key, value in payload.items() if key not in hidden}
