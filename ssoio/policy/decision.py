"""Decisions are values: allowed or not, and the rule that said so."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Decision"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one authorisation question.

    ``rule`` names the configuration rule that decided (``rooms[2] 'staff'``,
    ``events.'chat:send'``), or ``None`` when no rule covered the request (deny by
    default); ``reason`` says why in words, for logs and ``ssoio explain``; ``code`` is the
    wire code a denial is reported with.
    """

    allowed: bool
    reason: str
    rule: str | None = None
    code: str = "forbidden"

    def __bool__(self) -> bool:
        return self.allowed

    @classmethod
    def allow(cls, reason: str, rule: str | None = None) -> Decision:
        return cls(True, reason, rule, "ok")

    @classmethod
    def deny(cls, reason: str, rule: str | None = None, code: str = "forbidden") -> Decision:
        return cls(False, reason, rule, code)
