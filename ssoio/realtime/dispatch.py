"""Event dispatch: the one path every client event takes before anything acts on it.

The connection is known and authenticated, rate limits (per connection and per user),
one JSON payload, the token still valid (else only ``auth:refresh`` is accepted), then
the event's own rule (shape and permission, from the policy): a built-in event, an
embedding application's handler, or a relay event of the configuration. Refusals are
``SsoioError``s, answered in the ack.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ssoio.audit import Observer
from ssoio.clock import Clock
from ssoio.errors import InvalidPayload, RateLimited, ReauthRequired, SsoioError, UnknownEvent
from ssoio.policy.events import CompiledEvent, delivered_payload
from ssoio.policy.principal import Principal
from ssoio.realtime.admission import Admission
from ssoio.realtime.connections import Connection, Connections
from ssoio.realtime.limits import GatewayLimits
from ssoio.realtime.live import LiveConfig
from ssoio.realtime.revocation import Revocation
from ssoio.realtime.rooms import Rooms

__all__ = ["Dispatcher", "Handler"]

Handler = Callable[[Principal, dict[str, Any]], Awaitable[Mapping[str, Any] | None]]
Answer = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Embedded:
    event: CompiledEvent
    handler: Handler


class Dispatcher:
    """Guards and runs client events."""

    def __init__(
        self, live: LiveConfig, clock: Clock, limits: GatewayLimits, connections: Connections,
        admission: Admission, rooms: Rooms, revocation: Revocation, observe: Observer,
        timing: Callable[[float], None] | None = None,
    ) -> None:  # fmt: skip
        self.live = live
        self.clock = clock
        self.limits = limits
        self.connections = connections
        self.rooms = rooms
        self.revocation = revocation
        self.observe = observe
        self.timing = timing  # event handling time, seconds (a metrics histogram)
        self.handlers: dict[str, _Embedded] = {}
        self._refresh = admission.refresh
        self._builtins: dict[str, Callable[[Connection, Any], Awaitable[Answer]]] = {
            "room:join": rooms.join,
            "room:leave": rooms.leave,
            "presence:list": rooms.presence,
        }

    def register(self, name: str, event: CompiledEvent, handler: Handler) -> None:
        """An embedding application's handler (``@sso.on``)."""
        self.handlers[name] = _Embedded(event, handler)

    async def handle_event(self, sid: str, name: str, args: list[Any]) -> Answer | None:
        """Guard and run one client event; return the ack body (``None``: drop silently)."""
        connection = self.connections.get(sid)
        if connection is None:
            return None
        started = time.perf_counter()
        try:
            return await self._guarded(connection, name, args)
        except SsoioError as refusal:
            principal = connection.principal
            self.observe(
                "event.denied",
                name=name[:100],
                code=refusal.code,
                issuer=principal.issuer,
                sub=principal.subject,
                reason=refusal.message,
            )
            return {"ok": False, "error": refusal.as_dict()}
        finally:
            if self.timing is not None:
                self.timing(time.perf_counter() - started)

    async def _guarded(self, connection: Connection, name: str, args: list[Any]) -> Answer:
        now = self.clock()
        if not connection.bucket.take(now) or not await self.limits.user_events.allow(
            connection.user
        ):
            raise RateLimited()
        if len(args) > 1:
            raise InvalidPayload("an event carries one JSON payload")
        payload = args[0] if args else None
        if name == "auth:refresh":
            return await self._refresh(connection, payload)
        if connection.expired(now):
            raise ReauthRequired("the token has expired; send auth:refresh first")
        builtin = self._builtins.get(name)
        if builtin is not None:
            return await builtin(connection, payload)
        embedded = self.handlers.get(name)
        if embedded is not None:
            return await self._embedded(connection, name, embedded, payload)
        return await self._configured(connection, name, payload)

    async def _embedded(
        self, connection: Connection, name: str, embedded: _Embedded, payload: object
    ) -> Answer:
        policy = self.live.policy
        if policy.events.find(name) is not None:  # the config's rule applies too
            policy.authorize_event(connection.principal, name, payload)
        authorized = policy.authorize(connection.principal, embedded.event, payload)
        result = await embedded.handler(connection.principal, authorized.payload)
        return {"ok": True, **(result or {})}

    async def _configured(self, connection: Connection, name: str, payload: object) -> Answer:
        """A relay or kick event of the configuration."""
        authorized = self.live.policy.authorize_event(connection.principal, name, payload)
        self.observe(
            "event.allowed",
            name=name,
            rule=authorized.decision.rule,
            sub=connection.principal.subject,
            room=authorized.room,
        )
        if authorized.event.rule.kick is not None:
            return {"ok": True, "kicked": await self.revocation.kick(connection, authorized)}
        event = authorized.event
        if event.rule.deliver_as is not None and authorized.room is not None:
            data = delivered_payload(event, connection.principal, authorized.payload)
            await self.rooms.deliver(authorized.room, event.rule.deliver_as, data, event.visibility)
            return {"ok": True}
        raise UnknownEvent("no handler is registered for this event")
