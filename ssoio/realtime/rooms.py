"""Rooms and presence: joining and leaving (by the client, by auto-join, by the policy),
delivery to a room with field visibility, and who is in a room across the cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssoio.audit import Observer
from ssoio.errors import Forbidden, InvalidPayload
from ssoio.policy.patterns import room_name_problem
from ssoio.policy.principal import Principal, principal_from_dict
from ssoio.policy.visibility import FieldVisibility
from ssoio.realtime.connections import Connection, Connections
from ssoio.realtime.live import LiveConfig
from ssoio.realtime.recovery import NOT_LOGGED, Logged, Recovery, visible_fields
from ssoio.realtime.recovery_log import LoggedEvent
from ssoio.realtime.seams import Cluster, Transport

__all__ = ["Rooms", "room_key"]

Answer = dict[str, Any]


def room_key(room: str) -> str:
    """The Socket.IO room behind a policy room: prefixed, so no client-chosen name can
    ever be another client's sid room or a python-socketio internal room."""
    return f"r:{room}"


class Rooms:
    """Room membership of this node's connections, kept in step with the transport."""

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

    async def enter(self, connection: Connection, room: str) -> None:
        await self.transport.enter(connection.sid, room_key(room), connection.namespace)
        self.connections.join(connection, room)
        if self.recovery is not None:
            self.recovery.rooms_changed(connection)

    async def exit(self, connection: Connection, room: str) -> None:
        await self.transport.leave(connection.sid, room_key(room), connection.namespace)
        self.connections.leave(connection, room)
        if self.recovery is not None:
            self.recovery.rooms_changed(connection)

    async def auto_join(self, connection: Connection) -> None:
        for room in self.live.policy.auto_join(connection.principal):
            await self.enter(connection, room)

    # -- the built-in events ----------------------------------------------------------

    async def join(self, connection: Connection, payload: object) -> Answer:
        """``room:join {room}``."""
        room = _room_field(payload)
        decision = self.live.policy.room(connection.principal, room, "join")
        if not decision:
            raise Forbidden(decision.reason)
        await self.enter(connection, room)
        self.observe("room.join", room=room, sub=connection.principal.subject, rule=decision.rule)
        return {"ok": True, "room": room}

    async def leave(self, connection: Connection, payload: object) -> Answer:
        """``room:leave {room}``."""
        room = _room_field(payload)
        if room in connection.rooms:
            await self.exit(connection, room)
            self.observe("room.leave", room=room, sub=connection.principal.subject)
        return {"ok": True, "room": room}

    async def presence(self, connection: Connection, payload: object) -> Answer:
        """``presence:list {room}``: the members on every node, as this client may see them."""
        room = _room_field(payload)
        decision = self.live.policy.room(connection.principal, room, "presence")
        if not decision:
            raise Forbidden(decision.reason)
        seen: dict[tuple[str, str], Principal] = {}
        for member in self.members_here(room):
            seen.setdefault((member.issuer, member.subject), member)
        complete = await self._members_elsewhere(room, seen)
        members = self.live.policy.presence_view(connection.principal, seen.values())
        answer: Answer = {"ok": True, "room": room, "members": members}
        if not complete:
            answer["partial"] = True  # some node did not answer (the cluster is degraded)
        return answer

    async def _members_elsewhere(self, room: str, seen: dict[tuple[str, str], Principal]) -> bool:
        if self.cluster is None:
            return True
        answers, complete = await self.cluster.request("presence", {"room": room})
        for answer in answers:
            for item in answer if isinstance(answer, list) else []:
                member = principal_from_dict(item)
                seen.setdefault((member.issuer, member.subject), member)
        return complete

    def members_here(self, room: str) -> list[Principal]:
        return [member.principal for member in self.connections.members(room)]

    # -- after the rights changed ---------------------------------------------------------

    async def reconcile(self, connection: Connection) -> None:
        """After a refresh or a policy reload: leave rooms no longer allowed (telling the
        client with ``room:revoked``), join new auto-join rooms."""
        principal = connection.principal
        auto = self.live.policy.auto_join(principal)
        for room in sorted(connection.rooms):
            if room not in auto and not self.live.policy.room(principal, room, "join"):
                await self._revoke(connection, room)
        for room in auto:
            if room not in connection.rooms:
                await self.enter(connection, room)

    async def _revoke(self, connection: Connection, room: str) -> None:
        await self.exit(connection, room)
        await self.transport.emit(
            "room:revoked",
            {"room": room, "code": "permission_revoked"},
            to=connection.sid,
            namespace=connection.namespace,
            ignore_queue=True,
        )
        self.observe("room.revoked", room=room, sub=connection.principal.subject)

    # -- delivery -------------------------------------------------------------------------

    async def deliver(
        self, room: str, event: str, payload: Mapping[str, Any],
        visibility: FieldVisibility | None = None, namespace: str = "/",
    ) -> None:  # fmt: skip
        """Emit ``event`` to ``room``, each recipient seeing only the fields it may see.

        Unfiltered events go through python-socketio's manager (every node); filtered ones
        are filtered by each node for its own members (the cluster bus carries them).
        With recovery in a cluster, the store logs and publishes both in one step and
        every node delivers from the bus, in the log's order (``Recovery.log_event``).
        """
        visibility = visibility or self.live.relay_visibility(event) or FieldVisibility()
        logged = await self._log(room, event, payload, visibility, namespace)
        if logged.announced:
            return  # every node, this one included, delivers it from the cluster bus
        offset = logged.offset
        if not visibility.rules:
            data = _with_offset(dict(payload), offset)
            await self.transport.emit(event, data, to=room_key(room), namespace=namespace)
            return
        await self.deliver_here(room, event, payload, visibility, namespace, offset)
        if self.cluster is not None:
            visible = [name for name, _ in visibility.rules]
            body = {"room": room, "event": event, "payload": dict(payload), "namespace": namespace,
                    "visible": visible, "offset": offset}  # fmt: skip
            await self.cluster.publish("deliver", body)

    async def _log(
        self, room: str, event: str, payload: Mapping[str, Any], visibility: FieldVisibility,
        namespace: str,
    ) -> Logged:  # fmt: skip
        """Log a room event for recovering clients before it is delivered, so that
        nothing delivered is missing from the log (recovery off: not logged)."""
        if self.recovery is None:
            return NOT_LOGGED
        entry = LoggedEvent("", room, event, dict(payload), visible_fields(visibility), namespace)
        return await self.recovery.log_event(entry)

    async def deliver_here(
        self, room: str, event: str, payload: Mapping[str, Any],
        visibility: FieldVisibility, namespace: str, offset: str | None = None,
    ) -> None:  # fmt: skip
        """The filtered delivery to this node's members of ``room``."""
        groups: dict[frozenset[str], list[str]] = {}
        for member in self.connections.members(room):
            groups.setdefault(visibility.hidden_from(member.principal), []).append(member.sid)
        for hidden, sids in groups.items():
            view = {k: v for k, v in payload.items() if k not in hidden}
            await self.transport.emit(event, _with_offset(view, offset), to=sids,
                                      namespace=namespace, ignore_queue=True)  # fmt: skip


def _with_offset(view: dict[str, Any], offset: str | None) -> Any:
    """An event's arguments: the payload, then its offset when it was logged (socket.io
    4.6+'s ``SessionAwareAdapter.broadcast`` appends it as the last argument; the client
    keeps the last one it received). python-socketio sends a tuple as several arguments."""
    return view if offset is None else (view, offset)


def _room_field(payload: object) -> str:
    if not isinstance(payload, dict) or set(payload) != {"room"}:
        raise InvalidPayload("this event takes {room}")
    problem = room_name_problem(payload["room"])
    if problem is not None:
        raise InvalidPayload(problem)
    return str(payload["room"])
