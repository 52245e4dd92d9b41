"""``ssoio explain``: a principal and the policy's answers, as data, for people to read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ssoio.errors import SsoioError
from ssoio.policy.decision import Decision
from ssoio.policy.engine import Policy
from ssoio.policy.principal import Principal
from ssoio.policy.rooms import Action

__all__ = ["Explanation", "Question", "explain"]


@dataclass(frozen=True, slots=True)
class Question:
    """One decision to explain: a room action, or an event (with an optional payload)."""

    room: str | None = None
    action: Action = "join"
    event: str | None = None
    payload: Any = None

    @property
    def text(self) -> str:
        if self.event is not None:
            return f"event {self.event}"
        return f"room {self.room} {self.action}"


@dataclass(frozen=True, slots=True)
class Explanation:
    principal: Principal
    auto_join: tuple[str, ...]
    answers: list[tuple[Question, Decision]] = field(default_factory=list)

    @property
    def all_allowed(self) -> bool:
        return all(decision.allowed for _, decision in self.answers)

    def as_dict(self) -> dict[str, Any]:
        p = self.principal
        return {
            "principal": {
                "issuer": p.issuer, "sub": p.subject, "username": p.username, "email": p.email,
                "name": p.name, "roles": sorted(p.roles), "groups": sorted(p.groups),
                "scopes": sorted(p.scopes),
                "attributes": {k: list(v) for k, v in p.attributes.items()},
                "session_id": p.session_id, "client_id": p.client_id,
            },
            "auto_join": list(self.auto_join),
            "decisions": [
                {"question": q.text, "allowed": d.allowed, "code": d.code, "rule": d.rule,
                 "reason": d.reason}
                for q, d in self.answers
            ],
        }  # fmt: skip

    def lines(self) -> list[str]:
        p = self.principal
        attributes = ", ".join(f"{k}={'|'.join(v)}" for k, v in sorted(p.attributes.items()))
        out = [
            f"principal  {p.subject} (issuer {p.issuer})",
            f"  username {p.username or '-'}   email {p.email or '-'}   name {p.name or '-'}",
            f"  roles    {', '.join(sorted(p.roles)) or '-'}",
            f"  groups   {', '.join(sorted(p.groups)) or '-'}",
            f"  scopes   {', '.join(sorted(p.scopes)) or '-'}",
            f"  attrs    {attributes or '-'}",
            f"auto-join  {', '.join(self.auto_join) or '-'}",
        ]
        for question, decision in self.answers:
            verdict = "ALLOW" if decision.allowed else f"DENY ({decision.code})"
            out.append(f"{question.text}: {verdict}: {decision.reason}")
        return out


def explain(policy: Policy, principal: Principal, questions: list[Question]) -> Explanation:
    """Answer each question for ``principal``."""
    explanation = Explanation(principal, policy.auto_join(principal))
    for question in questions:
        explanation.answers.append((question, _answer(policy, principal, question)))
    return explanation


def _answer(policy: Policy, principal: Principal, question: Question) -> Decision:
    if question.event is None:
        return policy.room(principal, question.room or "", question.action)
    if question.payload is None:
        return policy.may_send(principal, question.event)
    try:
        return policy.authorize_event(principal, question.event, question.payload).decision
    except SsoioError as refusal:
        return Decision.deny(refusal.message, code=refusal.code)
