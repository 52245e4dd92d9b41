"""The compiled policy: every authorisation question ssoio asks, answered from plain data.

Built once from ``Settings`` (and again on reload); pure from then on: no I/O, no clock,
the same input always gives the same ``Decision``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ssoio.config.model import Settings
from ssoio.errors import Forbidden, IssuerUnknown, UnknownEvent
from ssoio.policy.decision import Decision
from ssoio.policy.events import CompiledEvent, EventRules, validate_payload
from ssoio.policy.mapping import ClaimMapping, map_claims
from ssoio.policy.principal import Principal
from ssoio.policy.requirements import Requirement, parse
from ssoio.policy.rooms import Action, RoomRules, expand
from ssoio.policy.visibility import FieldVisibility

__all__ = ["AuthorizedEvent", "Policy"]

# Room decisions remembered (per principal object, room and action): a chat sender's
# every event asks the same question. Bounded: emptied when full.
_DECISIONS_KEPT = 4096


@dataclass(frozen=True, slots=True)
class AuthorizedEvent:
    """A client event that passed every check: what to do with it."""

    event: CompiledEvent
    payload: dict[str, Any]
    room: str | None
    decision: Decision


class Policy:
    """Claim mapping, room, event, presence and namespace rules of one configuration."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mappings = {i.name: ClaimMapping.resolve(i.claims) for i in settings.issuers}
        self.rooms = RoomRules(settings.rooms)
        self.events = EventRules(settings.events)
        self.presence_visibility = FieldVisibility.compile(settings.presence.visible)
        self._namespaces = {
            name: _NamespaceRule(name, parse(spec))
            for name, spec in settings.policy.namespaces.items()
        }
        self._decisions: dict[tuple[int, str, str], tuple[Principal, Decision]] = {}

    # -- identity -------------------------------------------------------------------

    def use_preset(self, issuer: str, preset: str) -> None:
        """Map ``issuer``'s claims with ``preset``: what ``preset = "auto"`` stands for, once
        the provider's metadata has chosen it (the edge calls this; nothing else changes)."""
        settings = self.settings.issuer_named(issuer)
        if settings is not None and settings.claims.preset == "auto":
            self.mappings[issuer] = ClaimMapping.resolve(settings.claims, preset)

    def principal_from_claims(self, claims: Mapping[str, Any], issuer: str) -> Principal:
        """The principal of a token's (verified) claims, through the claim mapping of the
        issuer configured as ``issuer`` (its name).

        :raises IssuerUnknown | ClaimsInvalid:
        """
        mapping = self.mappings.get(issuer)
        if mapping is None:
            raise IssuerUnknown(f"no issuer named {issuer!r}")
        return map_claims(claims, mapping, issuer)

    # -- decisions ------------------------------------------------------------------

    def namespace(self, principal: Principal, namespace: str) -> Decision:
        rule = self._namespaces.get(namespace)
        if rule is None:
            return Decision.deny(
                f"no rule opens namespace {namespace!r}", code="namespace_forbidden"
            )
        return rule.allowed if rule.requirement(principal) else rule.denied

    def room(self, principal: Principal, room: str, action: Action) -> Decision:
        """May ``principal`` do ``action`` on ``room`` (``RoomRules.decide``)? A decision
        depends on nothing else, so it is remembered for the same principal object (a
        refresh makes a new one; a reload, a new ``Policy``)."""
        key = (id(principal), room, action)
        known = self._decisions.get(key)
        if known is not None and known[0] is principal:  # (the entry keeps its id taken)
            return known[1]
        decision = self.rooms.decide(principal, room, action)
        if len(self._decisions) >= _DECISIONS_KEPT:
            self._decisions.clear()
        self._decisions[key] = (principal, decision)
        return decision

    def auto_join(self, principal: Principal) -> tuple[str, ...]:
        return self.rooms.auto_join(principal, self.settings.policy.max_auto_join_rooms)

    def may_send(self, principal: Principal, name: str) -> Decision:
        """May ``principal`` send event ``name`` at all (before payload and room checks)?"""
        event = self.events.find(name)
        if event is None:
            if self.settings.policy.allow_unknown_events:
                return Decision.allow("policy.allow_unknown_events is on")
            return Decision.deny(f"no event rule for {name[:100]!r}", code="unknown_event")
        if event.requires(principal):
            return event.allowed
        return Decision.deny(f"{event.label} allows only {event.requires.describe()}", event.label)

    def authorize_event(self, principal: Principal, name: str, payload: object) -> AuthorizedEvent:
        """Every check of a declared client event, in order: known, payload, sender, room.

        :raises UnknownEvent | InvalidPayload | Forbidden:
        """
        event = self.events.find(name)
        if event is None:
            raise UnknownEvent()
        return self.authorize(principal, event, payload)

    def authorize(
        self, principal: Principal, event: CompiledEvent, payload: object
    ) -> AuthorizedEvent:
        """``authorize_event`` for an event rule already found (or built by an embedding
        application's ``@sso.on``)."""
        clean = validate_payload(event, payload)
        if not event.requires(principal):
            raise Forbidden(f"{event.label} allows only {event.requires.describe()}")
        decision = event.allowed
        room = self._target_room(event, principal, clean)
        if room is not None and event.room_action is not None:
            decision = self.room(principal, room, event.room_action)  # type: ignore[arg-type]
            if not decision:
                raise Forbidden(decision.reason)
        return AuthorizedEvent(event, clean, room, decision)

    def _target_room(
        self, event: CompiledEvent, principal: Principal, payload: Mapping[str, Any]
    ) -> str | None:
        if event.rule.room_field is not None:
            return str(payload[event.rule.room_field])
        if event.target is None:
            return None
        rooms = expand(event.target, principal, 2)
        if len(rooms) != 1:  # no value (or several) for the sender: nowhere to deliver
            raise Forbidden(f"{event.label} has no single target room for this sender")
        return rooms[0]

    def may_kick(self, event: CompiledEvent, actor: Principal, target: Principal) -> Decision:
        """Kick rules: the actor must share each ``kick.same_attributes`` with the target."""
        kick = event.rule.kick
        if kick is None:
            return Decision.deny(f"{event.label} is not a kick event", event.label)
        for name in kick.same_attributes:
            if not set(actor.values(name)) & set(target.values(name)):
                return Decision.deny(
                    f"{event.label} kicks only within the same {name}", event.label
                )
        return Decision.allow(f"{event.label} allows this kick", event.label)

    # -- presence ------------------------------------------------------------------

    def presence_view(
        self, recipient: Principal, members: Iterable[Principal]
    ) -> list[dict[str, Any]]:
        """The members of a room as ``recipient`` may see them (configured fields,
        minus those hidden from this recipient)."""
        hidden = self.presence_visibility.hidden_from(recipient)
        fields = [f for f in self.settings.presence.fields if f not in hidden]
        view = []
        for member in members:
            values = {
                "sub": member.subject,
                "username": member.username,
                "email": member.email,
                "name": member.name,
            }
            view.append({str(f): values[f] for f in fields if values[f] is not None})
        return view


class _NamespaceRule:
    """A namespace's requirement, with its two decisions made once (they name the rule,
    not the principal)."""

    __slots__ = ("allowed", "denied", "requirement")

    def __init__(self, namespace: str, requirement: Requirement) -> None:
        label = f"policy.namespaces.{json.dumps(namespace, ensure_ascii=False)}"
        self.requirement = requirement
        self.allowed = Decision.allow(f"{label} allows {requirement.describe()}", label)
        self.denied = Decision.deny(
            f"{label} allows only {requirement.describe()}", label, code="namespace_forbidden"
        )
