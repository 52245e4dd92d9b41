"""What ``ssoio doctor`` found: one ``Check`` per line, and the report they make."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Check", "Report", "Status"]

Status = Literal["ok", "warn", "fail", "info"]
_EXIT = {"ok": 0, "info": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was seen, what was expected, and what to change when it is wrong.

    ``info`` lines (the principal, decisions) inform and never change the exit status.
    """

    name: str
    status: Status
    message: str
    seen: Any = None
    expected: Any = None
    suggestion: str | None = None

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name:<16} {self.message}"
        if self.seen is not None or self.expected is not None:
            text += f" (seen {_show(self.seen)}; expected {_show(self.expected)})"
        if self.suggestion:
            text += f"; suggestion: {self.suggestion}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "status": self.status,
            "message": self.message,
            "seen": self.seen,
            "expected": self.expected,
            "suggestion": self.suggestion,
        }


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@dataclass(slots=True)
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    @property
    def exit_status(self) -> int:
        """0 all ok, 1 warnings, 2 failures."""
        return max((_EXIT[c.status] for c in self.checks), default=0)

    def lines(self) -> list[str]:
        counts = {s: sum(c.status == s for c in self.checks) for s in ("ok", "warn", "fail")}
        summary = f"{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failures"
        return [c.line() for c in self.checks] + [summary]

    def as_dict(self) -> dict[str, Any]:
        return {"checks": [c.as_dict() for c in self.checks], "exit": self.exit_status}
