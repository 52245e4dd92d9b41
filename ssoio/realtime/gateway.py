"""The gateway: what ssoio does for each connect, event and timer, independent of the
Socket.IO plumbing (``server.py`` adapts python-socketio to it).

Every client event passes one path before anything acts on it: the connection is known
and authenticated, rate limits (per connection and per user), one JSON payload, the token
still valid (else only ``auth:refresh`` is accepted), then the event's own rule (shape and
permission, from the policy). Refusals are ``SsoioError``s, answered in the ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ssoio.addresses import client_key
from ssoio.audit import Observer
from ssoio.clock import Clock
from ssoio.cluster.bus import ClusterBus
from ssoio.config.model import Settings
from ssoio.config.server import BucketSettings
from ssoio.errors import (
    AuthenticationError,
    Forbidden,
    InvalidPayload,
    NamespaceForbidden,
    OriginDenied,
    RateLimited,
    ReauthRequired,
    SsoioError,
    UnknownEvent,
)
from ssoio.oidc.providers import IdentityProviders
from ssoio.policy.engine import AuthorizedEvent, Policy
from ssoio.policy.events import CompiledEvent, delivered_payload
from ssoio.policy.patterns import room_name_problem
from ssoio.policy.principal import (
    Principal,
    principal_from_dict,
    principal_to_dict,
    shares_values,
)
from ssoio.policy.visibility import FieldVisibility
from ssoio.realtime.connections import Connection, Connections
from ssoio.realtime.credentials import Credential, find_credential
from ssoio.realtime.lifetime import Due, Scheduler
from ssoio.realtime.origins import OriginPolicy
from ssoio.realtime.ratelimit import RateLimiter, TokenBucket

__all__ = ["Gateway", "Handler", "SessionResolver", "Transport", "room_key"]

log = logging.getLogger(__name__)

SESSION_COOKIE = "ssoio_session"
Handler = Callable[[Principal, dict[str, Any]], Awaitable[Mapping[str, Any] | None]]


def room_key(room: str) -> str:
    """The Socket.IO room behind a policy room: prefixed, so no client-chosen name can
    ever be another client's sid room or a python-socketio internal room."""
    return f"r:{room}"


class SessionResolver(Protocol):
    """The browser-login seam: a session cookie -> (session id, current access token)."""

    cookie_name: str  # "ssoio_session", "__Host-ssoio_session" under https

    async def resolve(self, cookie_value: str) -> tuple[str, str] | None: ...


class Limiter(Protocol):
    async def allow(self, key: Hashable) -> bool: ...

    async def peek(self, key: Hashable) -> bool: ...


class Transport(Protocol):
    """What the gateway needs of the Socket.IO server (``server.SsoioSocketServer``)."""

    async def emit(
        self,
        event: str,
        data: Any,
        *,
        to: str | list[str],
        namespace: str,
        ignore_queue: bool = False,
    ) -> None: ...

    async def enter(self, sid: str, room: str, namespace: str) -> None: ...

    async def leave(self, sid: str, room: str, namespace: str) -> None: ...

    async def disconnect(self, sid: str, namespace: str) -> None: ...

    async def close_session(self, eio_sid: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Embedded:
    event: CompiledEvent
    handler: Handler


class Gateway:
    """Connections, events and timers of one node."""

    def __init__(
        self,
        settings: Settings,
        providers: IdentityProviders,
        policy: Policy,
        transport: Transport,
        *,
        clock: Clock,
        sessions: SessionResolver | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.observe = observe or Observer()
        self.timing: Callable[[float], None] | None = None  # event handling time, seconds
        self.closing = False  # set by a graceful shutdown: no new sessions
        self.cluster: ClusterBus | None = None  # set when nodes share state over Redis
        self.providers = providers
        self.policy = policy
        self.transport = transport
        self.clock = clock
        self.shared_limiter: Callable[[str, BucketSettings, RateLimiter], Limiter] | None = None
        self.sessions = sessions
        self.connections = Connections()
        self.scheduler = Scheduler()
        self.origins = OriginPolicy(settings.server.public_url, settings.server.allowed_origins)
        self._limiters(settings)
        self.handlers: dict[str, _Embedded] = {}
        self._pending: dict[str, str] = {}  # unauthenticated Engine.IO sid -> client_key
        self._pending_per_ip: dict[str, int] = {}
        self._timer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._builtins: dict[str, Callable[[Connection, Any], Awaitable[dict[str, Any]]]] = {
            "room:join": self._join,
            "room:leave": self._leave,
            "presence:list": self._presence,
        }
        self._relay_visibility = {
            e.rule.deliver_as: e.visibility for e in policy.events if e.rule.deliver_as
        }

    def _limiters(self, settings: Settings) -> None:
        limits, clock, keys = settings.limits, self.clock, settings.limits.max_tracked_keys
        connects = RateLimiter(limits.connects_per_ip, clock, keys)
        failed = RateLimiter(limits.failed_auth_per_ip, clock, keys)
        self.connect_limiter: Limiter = connects
        self.failed_auth: Limiter = failed
        if self.shared_limiter is not None:  # a cluster: one budget per IP across nodes
            self.connect_limiter = self.shared_limiter("connects", limits.connects_per_ip, connects)
            self.failed_auth = self.shared_limiter("failed_auth", limits.failed_auth_per_ip, failed)
        # events per user stay per node: a round trip to Redis per event is not worth it
        self.user_events = RateLimiter(limits.events_per_user, clock, keys)

    def use_shared_limits(
        self, factory: Callable[[str, BucketSettings, RateLimiter], Limiter]
    ) -> None:
        """Rate limits shared by a cluster's nodes (see ``cluster.node.shared_limiter``)."""
        self.shared_limiter = factory
        self._limiters(self.settings)

    def relay_visibility(self, event: str) -> FieldVisibility | None:
        return self._relay_visibility.get(event)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the timer loop (idempotent; also called lazily on first connect)."""
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._timer_loop(), name="ssoio-timers")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None

    # -- Engine.IO sessions that have not authenticated yet ------------------------------

    def session_opened(self, eio_sid: str, ip: str) -> bool:
        """A new Engine.IO session; False refuses it (shutting down, or too many
        unauthenticated sessions from this IP, ``client_key``)."""
        if self.closing:
            return False
        held = self._pending_per_ip.get(client_key(ip), 0)  # an IPv6 /64 counts as one
        if held >= self.settings.realtime.max_unauthenticated_per_ip:
            self.observe("auth.session.refused", ip=ip, code="rate_limited")
            return False
        self._mark_pending(eio_sid, ip)
        return True

    @property
    def unauthenticated_sessions(self) -> int:
        return len(self._pending)

    def session_closed(self, eio_sid: str) -> None:
        self._unmark_pending(eio_sid)

    def _mark_pending(self, eio_sid: str, ip: str) -> None:
        if eio_sid in self._pending:
            return
        key = client_key(ip)
        self._pending[eio_sid] = key
        self._pending_per_ip[key] = self._pending_per_ip.get(key, 0) + 1
        deadline = self.clock() + self.settings.realtime.unauthenticated_timeout_s
        self._schedule(deadline, "unauthenticated", eio_sid)

    def _unmark_pending(self, eio_sid: str) -> None:
        ip = self._pending.pop(eio_sid, None)
        if ip is not None:
            left = self._pending_per_ip[ip] - 1
            if left:
                self._pending_per_ip[ip] = left
            else:
                del self._pending_per_ip[ip]

    # -- connect / disconnect ------------------------------------------------------------

    async def connect(
        self, sid: str, eio_sid: str, namespace: str, environ: Mapping[str, Any], auth: object
    ) -> Connection:
        """Authenticate a namespace connect and set the connection up.

        :raises SsoioError: the refusal, with its wire code.
        """
        self.start()
        ip = str(environ.get("REMOTE_ADDR", ""))
        origin = environ.get("HTTP_ORIGIN")
        try:
            connection = await self._admit(sid, namespace, environ, auth, ip, origin)
        except SsoioError as refusal:
            self.observe(
                "auth.connect.refused",
                code=refusal.code,
                ip=ip,
                origin=origin,
                namespace=namespace,
                transport=_transport(environ),
            )
            raise
        self._unmark_pending(eio_sid)
        self.connections.add(connection)
        for room in self.policy.auto_join(connection.principal):
            await self._enter(connection, room)
        self._schedule_expiry(connection)
        self.observe(
            "auth.connect.accepted",
            issuer=connection.principal.issuer,
            sub=connection.principal.subject,
            ip=ip,
            origin=origin,
            namespace=namespace,
            transport=connection.transport,
        )
        return connection

    async def _admit(
        self, sid: str, namespace: str, environ: Mapping[str, Any], auth: object, ip: str,
        origin: str | None,
    ) -> Connection:  # fmt: skip
        if not self.origins.allows(origin):
            raise OriginDenied()
        key = client_key(ip)
        if not await self.connect_limiter.allow(key) or not await self.failed_auth.peek(key):
            raise RateLimited("too many connection attempts from this address")
        try:
            credential = find_credential(
                auth,
                environ,
                cookie_name=self.sessions.cookie_name if self.sessions else SESSION_COOKIE,
                allow_query=self.settings.server.insecure_allow_query_token,
            )
            web_session, token = await self._token_of(credential)
            verified = await self.providers.verifier.verify(token)
            principal = self.policy.principal(verified)
        except AuthenticationError:
            await self.failed_auth.allow(key)
            raise
        decision = self.policy.namespace(principal, namespace)
        if not decision:
            raise NamespaceForbidden(decision.reason)
        bucket = TokenBucket.full(self.settings.limits.events_per_connection, self.clock())
        return Connection(
            sid=sid,
            namespace=namespace,
            principal=principal,
            expires_at=verified.expires_at,
            leeway_s=verified.issuer.leeway_s,
            fingerprint=verified.fingerprint,
            ip=ip,
            origin=origin,
            transport=_transport(environ),
            bucket=bucket,
            web_session=web_session,
            claims=verified.claims,
        )

    async def _token_of(self, credential: Credential) -> tuple[str | None, str]:
        """(browser session id or None, access token) of a credential."""
        if credential.source != "cookie":
            return None, credential.value
        resolved = await self.sessions.resolve(credential.value) if self.sessions else None
        if resolved is None:
            raise _NoSession()
        return resolved

    def disconnected(self, sid: str, eio_sid: str | None, reason: str) -> None:
        """A namespace connection ended (either side)."""
        connection = self.connections.remove(sid)
        if connection is not None:
            principal = connection.principal
            self.observe(
                "auth.disconnect",
                issuer=principal.issuer,
                sub=principal.subject,
                reason=str(reason),
            )
        if eio_sid is not None and connection is not None:
            # The transport stays open for a new authenticated connect, for a while.
            self._mark_pending(eio_sid, connection.ip)

    # -- events ----------------------------------------------------------------------------

    async def handle_event(self, sid: str, name: str, args: list[Any]) -> dict[str, Any] | None:
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

    async def _guarded(self, connection: Connection, name: str, args: list[Any]) -> dict[str, Any]:
        now = self.clock()
        if not connection.bucket.take(now) or not await self.user_events.allow(connection.user):
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
        return await self._custom(connection, name, payload)

    async def _custom(self, connection: Connection, name: str, payload: object) -> dict[str, Any]:
        embedded = self.handlers.get(name)
        if embedded is not None:
            if self.policy.events.find(name) is not None:  # the config's rule applies too
                self.policy.authorize_event(connection.principal, name, payload)
            authorized = self.policy.authorize(connection.principal, embedded.event, payload)
            result = await embedded.handler(connection.principal, authorized.payload)
            return {"ok": True, **(result or {})}
        authorized = self.policy.authorize_event(connection.principal, name, payload)
        self.observe(
            "event.allowed",
            name=name,
            rule=authorized.decision.rule,
            sub=connection.principal.subject,
            room=authorized.room,
        )
        if authorized.event.rule.kick is not None:
            return {"ok": True, "kicked": await self._kick(connection, authorized)}
        if authorized.event.rule.deliver_as is not None and authorized.room is not None:
            data = delivered_payload(authorized.event, connection.principal, authorized.payload)
            await self.deliver(
                authorized.room, authorized.event.rule.deliver_as, data, authorized.event.visibility
            )
            return {"ok": True}
        raise UnknownEvent("no handler is registered for this event")

    async def _kick(self, actor: Connection, authorized: AuthorizedEvent) -> int:
        # Targets in another tenant are skipped silently: answering "forbidden" would tell
        # an admin whether someone outside their scope is online.
        target_user = (actor.principal.issuer, str(authorized.payload["sub"]))
        kicked = await self.kick_here(authorized.event.name, actor.principal, target_user[1])
        kicked += await self._count_elsewhere("kick", {
            "event": authorized.event.name, "actor": principal_to_dict(actor.principal),
            "sub": target_user[1],
        })  # fmt: skip
        self.observe(
            "admin.kick", actor=actor.principal.subject, target=target_user[1], kicked=kicked
        )
        return kicked

    async def kick_here(self, event_name: str, actor: Principal, sub: str) -> int:
        """Kick this node's connections of ``sub`` that ``actor`` may kick."""
        event = self.policy.events.find(event_name)
        kicked = 0
        if event is None:
            return kicked
        for target in self.connections.of_user((actor.issuer, sub)):
            if self.policy.may_kick(event, actor, target.principal):
                await self.revoke(target, "kicked")
                kicked += 1
        return kicked

    # -- built-in events --------------------------------------------------------------------

    async def _join(self, connection: Connection, payload: object) -> dict[str, Any]:
        room = _room_field(payload)
        decision = self.policy.room(connection.principal, room, "join")
        if not decision:
            raise Forbidden(decision.reason)
        await self._enter(connection, room)
        self.observe("room.join", room=room, sub=connection.principal.subject, rule=decision.rule)
        return {"ok": True, "room": room}

    async def _leave(self, connection: Connection, payload: object) -> dict[str, Any]:
        room = _room_field(payload)
        if room in connection.rooms:
            await self._exit(connection, room)
            self.observe("room.leave", room=room, sub=connection.principal.subject)
        return {"ok": True, "room": room}

    async def _presence(self, connection: Connection, payload: object) -> dict[str, Any]:
        room = _room_field(payload)
        decision = self.policy.room(connection.principal, room, "presence")
        if not decision:
            raise Forbidden(decision.reason)
        seen: dict[tuple[str, str], Principal] = {}
        for member in self.members_here(room):
            seen.setdefault((member.issuer, member.subject), member)
        complete = True
        if self.cluster is not None:
            answers, complete = await self.cluster.request("presence", {"room": room})
            for answer in answers:
                for item in answer if isinstance(answer, list) else []:
                    member = principal_from_dict(item)
                    seen.setdefault((member.issuer, member.subject), member)
        members = self.policy.presence_view(connection.principal, seen.values())
        answer = {"ok": True, "room": room, "members": members}
        if not complete:
            answer["partial"] = True  # some node did not answer (the cluster is degraded)
        return answer

    def members_here(self, room: str) -> list[Principal]:
        return [member.principal for member in self.connections.members(room)]

    async def _refresh(self, connection: Connection, payload: object) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("token"), str):
            raise InvalidPayload("auth:refresh takes {token}")
        verified = await self.providers.verifier.verify(payload["token"])
        principal = self.policy.principal(verified)
        old = connection.principal
        if (principal.issuer, principal.subject) != (old.issuer, old.subject):
            self.observe("auth.refresh.refused", sub=old.subject, code="forbidden")
            raise Forbidden("a refreshed token must be for the same user and issuer")
        if not self.policy.namespace(principal, connection.namespace):
            raise Forbidden("the refreshed token may not use this namespace")
        self.connections.replace_principal(connection, principal)
        connection.expires_at, connection.fingerprint = verified.expires_at, verified.fingerprint
        connection.claims = verified.claims
        connection.generation += 1
        await self._reconcile_rooms(connection)
        self._schedule_expiry(connection)
        self.observe("auth.refresh", issuer=principal.issuer, sub=principal.subject)
        return {"ok": True, "expires_in": max(0, round(verified.expires_at - self.clock()))}

    async def _reconcile_rooms(self, connection: Connection) -> None:
        """After a refresh or a policy reload: leave rooms no longer allowed, join new
        auto-join rooms."""
        principal = connection.principal
        auto = self.policy.auto_join(principal)
        for room in sorted(connection.rooms):
            if room not in auto and not self.policy.room(principal, room, "join"):
                await self._exit(connection, room)
                await self.transport.emit(
                    "room:revoked",
                    {"room": room, "code": "permission_revoked"},
                    to=connection.sid,
                    namespace=connection.namespace,
                    ignore_queue=True,
                )
                self.observe("room.revoked", room=room, sub=principal.subject)
        for room in auto:
            if room not in connection.rooms:
                await self._enter(connection, room)

    # -- delivery, revocation ---------------------------------------------------------------

    async def deliver(
        self, room: str, event: str, payload: Mapping[str, Any],
        visibility: FieldVisibility | None = None, namespace: str = "/",
    ) -> None:  # fmt: skip
        """Emit ``event`` to ``room``, each recipient seeing only the fields it may see.

        Unfiltered events go through python-socketio's manager (every node); filtered ones
        are filtered by each node for its own members (the cluster bus carries them).
        """
        visibility = visibility or self._relay_visibility.get(event) or FieldVisibility()
        if not visibility.rules:
            await self.transport.emit(event, dict(payload), to=room_key(room), namespace=namespace)
            return
        await self.deliver_here(room, event, payload, visibility, namespace)
        if self.cluster is not None:
            body = {"room": room, "event": event, "payload": dict(payload), "namespace": namespace,
                    "visible": [name for name, _ in visibility.rules]}  # fmt: skip
            await self.cluster.publish("deliver", body)

    async def deliver_here(
        self, room: str, event: str, payload: Mapping[str, Any],
        visibility: FieldVisibility, namespace: str,
    ) -> None:  # fmt: skip
        groups: dict[frozenset[str], list[str]] = {}
        for member in self.connections.members(room):
            groups.setdefault(visibility.hidden_from(member.principal), []).append(member.sid)
        for hidden, sids in groups.items():
            view = {k: v for k, v in payload.items() if k not in hidden}
            await self.transport.emit(event, view, to=sids, namespace=namespace, ignore_queue=True)

    async def revoke(self, connection: Connection, code: str) -> None:
        """Tell the client why (``auth:revoked``), then disconnect it."""
        self.observe(
            "auth.revoked",
            code=code,
            issuer=connection.principal.issuer,
            sub=connection.principal.subject,
        )
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
        return await self._revoke_all(targets, code) + await self._count_elsewhere("revoke", body)

    def _users_here(self, body: dict[str, Any]) -> list[Connection]:
        issuer, sub = body.get("issuer"), body.get("sub")
        targets = [c for c in self.connections if c.principal.subject == sub
                   and issuer in (None, c.principal.issuer)]  # fmt: skip
        if body.get("actor") is None:
            return targets
        actor = principal_from_dict(body["actor"])
        names = tuple(str(name) for name in body.get("same_attributes", []))
        return [c for c in targets if shares_values(actor, c.principal, names)]

    async def disconnect_web_session(self, web_session: str, code: str) -> int:
        """Disconnect every connection opened with the ssoio browser session's cookie."""
        targets = [c for c in self.connections if c.web_session == web_session]
        body = {"what": "web_session", "id": web_session, "code": code}
        return await self._revoke_all(targets, code) + await self._count_elsewhere("revoke", body)

    async def disconnect_session(self, issuer: str, session_id: str, code: str) -> int:
        """Disconnect every connection opened with IdP session ``session_id``, everywhere."""
        targets = self.connections.of_session((issuer, session_id))
        body = {"what": "idp_session", "issuer": issuer, "sid": session_id, "code": code}
        return await self._revoke_all(targets, code) + await self._count_elsewhere("revoke", body)

    async def revoke_here(self, body: dict[str, Any]) -> int:
        """The local part of a disconnect another node asked for (the cluster bus)."""
        code, what = str(body.get("code", "kicked")), body.get("what")
        if what == "user":
            targets = self._users_here(body)
        elif what == "web_session":
            targets = [c for c in self.connections if c.web_session == body.get("id")]
        elif what == "idp_session":
            targets = self.connections.of_session((str(body.get("issuer")), str(body.get("sid"))))
        else:
            return 0
        return await self._revoke_all(targets, code)

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

    async def apply(self, settings: Settings, policy: Policy) -> dict[str, int]:
        """Use a reloaded configuration on live connections, without dropping them.

        Each principal is mapped again from its token's claims; connections whose issuer
        is gone are disconnected (``issuer_removed``), those no longer allowed in their
        namespace too (``kicked``); rooms no longer allowed are left with
        ``room:revoked``. Returns counts for the audit record.
        """
        if settings.limits != self.settings.limits:
            self._limiters(settings)
        self.settings, self.policy = settings, policy
        self.origins = OriginPolicy(settings.server.public_url, settings.server.allowed_origins)
        self._relay_visibility = {
            e.rule.deliver_as: e.visibility for e in policy.events if e.rule.deliver_as
        }
        issuers = {i.name: i.issuer for i in settings.issuers}
        counts = {"kept": 0, "disconnected": 0}
        for connection in self.connections:
            code = await self._reapply(connection, issuers)
            if code is None:
                counts["kept"] += 1
            else:
                await self.revoke(connection, code)
                counts["disconnected"] += 1
        return counts

    async def _reapply(self, connection: Connection, issuers: dict[str, str]) -> str | None:
        """Re-evaluate one connection; the revocation code when it must go."""
        old = connection.principal
        if issuers.get(old.issuer) != connection.claims.get("iss"):
            return "issuer_removed"
        try:
            principal = self.policy.principal_from_claims(connection.claims, old.issuer)
        except SsoioError:
            return "kicked"
        if not self.policy.namespace(principal, connection.namespace):
            return "kicked"
        self.connections.replace_principal(connection, principal)
        await self._reconcile_rooms(connection)
        return None

    def register(self, name: str, event: CompiledEvent, handler: Handler) -> None:
        """An embedding application's handler (``@sso.on``)."""
        self.handlers[name] = _Embedded(event, handler)

    async def _enter(self, connection: Connection, room: str) -> None:
        await self.transport.enter(connection.sid, room_key(room), connection.namespace)
        self.connections.join(connection, room)

    async def _exit(self, connection: Connection, room: str) -> None:
        await self.transport.leave(connection.sid, room_key(room), connection.namespace)
        self.connections.leave(connection, room)

    # -- timers ---------------------------------------------------------------------------------

    def _schedule_expiry(self, connection: Connection) -> None:
        # A token that lives less than expiry_warning_s is warned about at once (the timer
        # loop runs after the CONNECT answer is queued): the client learns its expires_in
        # and may refresh in time, instead of being cut off without notice.
        warn_at = connection.expires_at - self.settings.realtime.expiry_warning_s
        self._schedule(max(warn_at, self.clock()), "warn", connection.sid, connection.generation)
        expire_at = connection.expires_at + connection.leeway_s
        self._schedule(expire_at, "expire", connection.sid, connection.generation)

    def _schedule(self, when: float, kind: Any, key: str, generation: int = 0) -> None:
        earliest = self.scheduler.next_deadline()
        self.scheduler.add(when, kind, key, generation)
        if earliest is None or when < earliest:
            self._wake.set()

    async def tick(self) -> None:
        """Act on everything due now (the timer loop calls this; tests may too)."""
        for due in self.scheduler.pop_due(self.clock()):
            try:
                await self._fire(due)
            except Exception as exc:  # the rest of the batch is popped already: go on
                log.error("timers.failed kind=%s", type(exc).__name__)
        if len(self.scheduler) > 2 * (2 * len(self.connections) + len(self._pending)) + 1024:
            self.scheduler.compact(self._live)

    def _live(self, due: Due) -> bool:
        if due.kind == "unauthenticated":
            return due.key in self._pending
        connection = self.connections.get(due.key)
        return connection is not None and connection.generation == due.generation

    async def _fire(self, due: Due) -> None:
        if due.kind == "unauthenticated":
            if due.key in self._pending:
                self._unmark_pending(due.key)
                self.observe("auth.session.timeout")
                await self.transport.close_session(due.key)
            return
        connection = self.connections.get(due.key)
        if connection is None or connection.generation != due.generation:
            return
        if due.kind == "warn":
            expires_in = max(0, round(connection.expires_at - self.clock()))
            notice = {"expires_in": expires_in}
            await self.transport.emit(
                "auth:expiring", notice, to=connection.sid, namespace=connection.namespace
            )
        else:
            await self.revoke(connection, "token_expired")

    async def _timer_loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a timer must never die silently; log one line, go on
                log.error("timers.failed", exc_info=False)
            self.scheduler.drop_stale(self._live)
            deadline = self.scheduler.next_deadline()
            delay = 1.0 if deadline is None else min(1.0, max(0.0, deadline - self.clock()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()


class _NoSession(AuthenticationError):
    code = "token_missing"
    default_message = "the session cookie names no active session; sign in again"


def _room_field(payload: object) -> str:
    if not isinstance(payload, dict) or set(payload) != {"room"}:
        raise InvalidPayload("this event takes {room}")
    problem = room_name_problem(payload["room"])
    if problem is not None:
        raise InvalidPayload(problem)
    return str(payload["room"])


def _transport(environ: Mapping[str, Any]) -> str:
    query = str(environ.get("QUERY_STRING", ""))
    return "websocket" if "transport=websocket" in query else "polling"
