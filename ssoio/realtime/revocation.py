"""Revocation: ending connections for security reasons, here and on the other nodes.

Each disconnect is preceded by ``auth:revoked {code}`` (DESIGN.md wire contract). Asked
here, a disconnect acts on this node's connections and asks the other nodes to act on
theirs (the cluster bus), adding up what they report.
"""

from __future__ import annotations

from typing import Any

from ssoio.audit import Observer
from ssoio.policy.engine import AuthorizedEvent
from ssoio.policy.principal import Principal, principal_from_dict, principal_to_dict, shares_values
from ssoio.realtime.connections import Connection, Connections
from ssoio.realtime.live import LiveConfig
from ssoio.realtime.recovery import Recovery
from ssoio.realtime.seams import Cluster, Transport

__all__ = ["Revocation"]


class Revocation:
    """Disconnects by user, browser session, IdP session, and admin kicks."""

    def __init__(
        self, live: LiveConfig, connections: Connections, transport: Transport,
        observe: Observer, cluster: Cluster | None, recovery: Recovery | None = None,
    ) -> None:  # fmt: skip
        self.recovery = recovery
        self.live = live
        self.connections = connections
        self.transport = transport
        self.observe = observe
        self.cluster = cluster

    async def revoke(self, connection: Connection, code: str) -> None:
        """Tell the client why (``auth:revoked``), then disconnect it."""
        principal = connection.principal
        self.observe("auth.revoked", code=code, issuer=principal.issuer, sub=principal.subject)
        if self.recovery is not None:  # a session ended on purpose never recovers
            await self.recovery.forget(connection)
        await self.transport.emit(
            "auth:revoked",
            {"code": code},
            to=connection.sid,
            namespace=connection.namespace,
            ignore_queue=True,
        )
        await self.transport.disconnect(connection.sid, connection.namespace)

    async def disconnect_user(
        self,
        sub: str,
        code: str = "kicked",
        issuer: str | None = None,
        *,
        actor: Principal | None = None,
        same_attributes: tuple[str, ...] = (),
    ) -> int:
        """Disconnect every connection of ``sub`` (of ``issuer``, or of any issuer), on
        every node; with ``actor``, only those sharing each of ``same_attributes`` with it
        (the others are skipped silently, as kicks do)."""
        body: dict[str, Any] = {"what": "user", "sub": sub, "issuer": issuer, "code": code}
        if actor is not None:
            body.update(actor=principal_to_dict(actor), same_attributes=list(same_attributes))
        targets = self._users_here(body)
        if self.recovery is not None and actor is None:  # also the sessions away now
            await self.recovery.forget_matching("user", (issuer or "", sub))
        return await self._revoke_all(targets, code) + await self._count_elsewhere("revoke", body)

    async def disconnect_web_session(self, web_session: str, code: str) -> int:
        """Disconnect every connection opened with the ssoio browser session's cookie."""
        targets = self._web_session_here(web_session)
        if self.recovery is not None:
            await self.recovery.forget_matching("web_session", (web_session,))
        body = {"what": "web_session", "id": web_session, "code": code}
        return await self._revoke_all(targets, code) + await self._count_elsewhere("revoke", body)

    async def disconnect_session(self, issuer: str, session_id: str, code: str) -> int:
        """Disconnect every connection opened with IdP session ``session_id``, everywhere."""
        targets = self.connections.of_session((issuer, session_id))
        if self.recovery is not None:
            await self.recovery.forget_matching("idp_session", (issuer, session_id))
        body = {"what": "idp_session", "issuer": issuer, "sid": session_id, "code": code}
        return await self._revoke_all(targets, code) + await self._count_elsewhere("revoke", body)

    async def revoke_here(self, body: dict[str, Any]) -> int:
        """The local part of a disconnect another node asked for (the cluster bus)."""
        code, what = str(body.get("code", "kicked")), body.get("what")
        if what == "user":
            targets = self._users_here(body)
        elif what == "web_session":
            targets = self._web_session_here(body.get("id"))
        elif what == "idp_session":
            targets = self.connections.of_session((str(body.get("issuer")), str(body.get("sid"))))
        else:
            return 0
        return await self._revoke_all(targets, code)

    def _users_here(self, body: dict[str, Any]) -> list[Connection]:
        issuer, sub = body.get("issuer"), body.get("sub")
        targets = [c for c in self.connections if c.principal.subject == sub
                   and issuer in (None, c.principal.issuer)]  # fmt: skip
        if body.get("actor") is None:
            return targets
        actor = principal_from_dict(body["actor"])
        names = tuple(str(name) for name in body.get("same_attributes", []))
        return [c for c in targets if shares_values(actor, c.principal, names)]

    def _web_session_here(self, web_session: object) -> list[Connection]:
        return [c for c in self.connections if c.web_session == web_session]

    # -- admin kicks ------------------------------------------------------------------------

    async def kick(self, actor: Connection, authorized: AuthorizedEvent) -> int:
        """A kick event (``[events.X.kick]``): the target's connections that ``actor``
        may kick, on every node."""
        # Targets in another tenant are skipped silently: answering "forbidden" would tell
        # an admin whether someone outside their scope is online.
        target = str(authorized.payload["sub"])
        if self.recovery is not None:
            # A kicked person's sessions that are away now must not come back by recovery
            # either. Their records do not hold what may_kick decides on, so every away
            # session of that sub is forgotten: the worst a kick outside the actor's scope
            # can do is make its target reconnect afresh.
            await self.recovery.forget_matching("user", (actor.principal.issuer, target))
        kicked = await self.kick_here(authorized.event.name, actor.principal, target)
        kicked += await self._count_elsewhere("kick", {
            "event": authorized.event.name, "actor": principal_to_dict(actor.principal),
            "sub": target,
        })  # fmt: skip
        self.observe("admin.kick", actor=actor.principal.subject, target=target, kicked=kicked)
        return kicked

    async def kick_here(self, event_name: str, actor: Principal, sub: str) -> int:
        """Kick this node's connections of ``sub`` that ``actor`` may kick."""
        policy = self.live.policy
        event = policy.events.find(event_name)
        if event is None:
            return 0
        targets = [t for t in self.connections.of_user((actor.issuer, sub))
                   if policy.may_kick(event, actor, t.principal)]  # fmt: skip
        return await self._revoke_all(targets, "kicked")

    async def _revoke_all(self, targets: list[Connection], code: str) -> int:
        for connection in targets:
            await self.revoke(connection, code)
        return len(targets)

    async def _count_elsewhere(self, kind: str, body: dict[str, Any]) -> int:
        """Ask the other nodes to act and add up what they report (0 when alone)."""
        if self.cluster is None:
            return 0
        answers, _complete = await self.cluster.request(kind, body)
        return sum(a for a in answers if isinstance(a, int) and not isinstance(a, bool))
