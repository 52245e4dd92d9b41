"""Admission: who may open an Engine.IO session, who a connection is (connect, and
``auth:refresh`` later), and setting an admitted connection up.

A connect passes, in order: the origin, the per-address limits, the credential (the first
present decides, DESIGN.md), the token's verification, the claim mapping to a principal,
the namespace rule and the per-user (and per-tenant) limits. Refusals are ``SsoioError``s
with their wire code.

Limits are keyed by what they protect (``limits``): an attempt spends its address's
connect budget and gets it back once it authenticates, so the address pays only for what
is anonymous or failed and an office behind one address is limited person by person.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ssoio.audit import Observer
from ssoio.clock import Clock
from ssoio.errors import (
    AuthenticationError,
    Forbidden,
    InvalidPayload,
    NamespaceForbidden,
    OriginDenied,
    RateLimited,
    SsoioError,
)
from ssoio.oidc.providers import IdentityProviders
from ssoio.oidc.verified import VerifiedToken
from ssoio.policy.principal import Principal
from ssoio.realtime.connections import Connection, Connections
from ssoio.realtime.credentials import Credential, find_credential
from ssoio.realtime.limits import AddressBudget, GatewayLimits
from ssoio.realtime.live import LiveConfig
from ssoio.realtime.pending import PendingSessions
from ssoio.realtime.ratelimit import TokenBucket
from ssoio.realtime.recovery import SHUTTING_DOWN, Recovery, Restored, view_of
from ssoio.realtime.rooms import Rooms
from ssoio.realtime.seams import BrowserSession, SessionResolver
from ssoio.realtime.timers import Timers

__all__ = ["Admission", "transport_of"]

SESSION_COOKIE = "ssoio_session"


class Admission:
    """Engine.IO sessions before they authenticate, connects, refreshes, disconnects."""

    def __init__(
        self, live: LiveConfig, providers: IdentityProviders, clock: Clock,
        limits: GatewayLimits, connections: Connections, pending: PendingSessions,
        rooms: Rooms, timers: Timers, observe: Observer, sessions: SessionResolver | None,
        recovery: Recovery | None = None,
    ) -> None:  # fmt: skip
        self.live = live
        self.providers = providers
        self.clock = clock
        self.limits = limits
        self.connections = connections
        self.pending = pending
        self.rooms = rooms
        self.timers = timers
        self.observe = observe
        self.sessions = sessions
        self.recovery = recovery
        self.closing = False  # set by a graceful shutdown: no new sessions

    # -- Engine.IO sessions ---------------------------------------------------------------

    def session_opened(self, eio_sid: str, ip: str) -> bool | RateLimited:
        """A new Engine.IO session; False refuses it (shutting down), ``RateLimited``
        when its address holds too many unauthenticated sessions: idle ones (older than
        ``realtime.handshake_window_s``) or, inside the window, handshaking ones."""
        if self.closing:
            return False
        key, budget = self.limits.address(ip)
        handshaking, idle = self.pending.held_by(
            key, self.clock(), self.live.settings.realtime.handshake_window_s
        )
        over_idle = idle >= budget.max_unauthenticated
        if over_idle or handshaking >= budget.max_handshakes:
            limit = "unauthenticated_sessions" if over_idle else "handshakes"
            self.observe("auth.session.refused", ip=ip, code="rate_limited", limit=limit,
                         key_kind=budget.kind)  # fmt: skip
            return RateLimited("too many unauthenticated sessions from this address")
        self._await_authentication(eio_sid, key)
        return True

    def session_closed(self, eio_sid: str) -> None:
        self.pending.remove(eio_sid)

    def _await_authentication(self, eio_sid: str, key: str) -> None:
        if self.pending.add(eio_sid, key, self.clock()):
            self.timers.unauthenticated(eio_sid)

    # -- connect / disconnect -------------------------------------------------------------

    async def connect(
        self, sid: str, eio_sid: str, namespace: str, environ: Mapping[str, Any], auth: object
    ) -> Connection:
        """Authenticate a namespace connect and set the connection up.

        :raises SsoioError: the refusal, with its wire code.
        """
        self.timers.start()
        try:
            connection = await self._admit(sid, namespace, environ, auth)
        except SsoioError as refusal:
            self.observe(
                "auth.connect.refused", code=refusal.code, ip=str(environ.get("REMOTE_ADDR", "")),
                origin=environ.get("HTTP_ORIGIN"), namespace=namespace,
                transport=transport_of(environ), **_operator_detail(refusal),
                **_limit_of(refusal),
            )  # fmt: skip
            raise
        self.pending.remove(eio_sid)
        restored = await self.recovery.restore(auth, connection) if self.recovery else None
        if self.recovery is not None and restored is None:
            await self.recovery.begin(connection)
        self.connections.add(connection)
        await self.rooms.auto_join(connection)
        if self.recovery is not None:
            if restored is not None:
                await self._restore(connection, restored)
            await self.recovery.opened(connection)
        self.timers.expiry(connection)
        principal = connection.principal
        self.observe(
            "auth.connect.accepted", issuer=principal.issuer, sub=principal.subject,
            ip=connection.ip, origin=connection.origin, namespace=namespace,
            transport=connection.transport,
        )  # fmt: skip
        return connection

    async def _restore(self, connection: Connection, restored: Restored) -> None:
        """A recovered session's rooms (those still allowed) and what it missed, as
        the recipient may see it; sent after the CONNECT answer (``replay``), before any
        live event of its rooms (the transport holds those until then)."""
        assert self.recovery is not None
        entered = [room for room in restored.rooms if room not in connection.rooms]
        for room in entered:
            await self.rooms.enter(connection, room)
        if not await self.recovery.missed(restored, connection):  # a fresh session after all
            for room in entered:
                await self.rooms.exit(connection, room)
            await self.recovery.begin(connection)
            return
        connection.replay = [
            ["room:revoked", {"room": room, "code": "permission_revoked"}]
            for room in restored.revoked
        ]
        for event in restored.events:
            known = self.live.relay_visibility(event.event)
            connection.replay.append([event.event, view_of(event, connection, known), event.offset])
        connection.fence = restored.events[-1].offset if restored.events else None
        for room in restored.revoked:
            self.observe("room.revoked", room=room, sub=connection.principal.subject)

    async def _admit(
        self, sid: str, namespace: str, environ: Mapping[str, Any], auth: object
    ) -> Connection:
        ip, origin = str(environ.get("REMOTE_ADDR", "")), environ.get("HTTP_ORIGIN")
        if not self.live.origins.allows(origin):
            raise OriginDenied()
        key, budget = self.limits.address(ip)
        session, verified, principal = await self._authenticate(auth, environ, key, budget)
        decision = self.live.policy.namespace(principal, namespace)
        if not decision:
            raise NamespaceForbidden(decision.reason)
        tenant = await self._charge_identity(principal)
        bucket = TokenBucket.full(self.live.settings.limits.events_per_connection, self.clock())
        return Connection(
            sid=sid, namespace=namespace, principal=principal, expires_at=verified.expires_at,
            leeway_s=verified.issuer.leeway_s, fingerprint=verified.fingerprint, ip=ip,
            origin=origin, transport=transport_of(environ), bucket=bucket,
            web_session=session.id if session else None, claims=verified.claims,
            session_ends_at=session.ends_at if session else math.inf, tenant=tenant,
        )  # fmt: skip

    async def _authenticate(
        self, auth: object, environ: Mapping[str, Any], key: str, budget: AddressBudget
    ) -> tuple[BrowserSession | None, VerifiedToken, Principal]:
        """``_identify``, paid for by the address only when it fails: the attempt spends
        a connect token of ``key`` (bounding the token work an address can have in
        flight) and gets it back once it authenticates, also from a cluster-shared
        bucket; a failure spends a failed-authentication token too."""
        if not await budget.connects.allow(key):
            raise _limited(budget.kind, "connects_per_ip")
        if not await budget.failed_auth.peek(key):
            raise _limited(budget.kind, "failed_auth_per_ip")
        try:
            identified = await self._identify(auth, environ)
        except AuthenticationError:
            await budget.failed_auth.allow(key)
            raise
        await budget.connects.refund(key)
        return identified

    async def _charge_identity(self, principal: Principal) -> str | None:
        """The per-user and per-tenant limits of an authenticated connect: connects per
        second (buckets, cluster-shared when the address ones are) and live sockets on
        this node. Returns the tenant key the connection counts for. Nothing awaits after
        the socket counts are read: the connection is added before another connect runs."""
        user = (principal.issuer, principal.subject)
        if not await self.limits.user_connects.allow(user):
            raise _limited("user", "connects_per_user")
        tenant = await self._charge_tenant(principal)
        limits = self.limits.settings
        if self.connections.count_of_user(user) >= limits.sockets_per_user:
            raise _limited("user", "sockets_per_user")
        most = limits.tenants.max_sockets if limits.tenants else 0
        if tenant is not None and self.connections.count_of_tenant(tenant) >= most:
            raise _limited("tenant", "tenants.max_sockets")
        return tenant

    async def _charge_tenant(self, principal: Principal) -> str | None:
        """The tenant key of ``principal`` (None when tenants are not limited, or it has
        none), after spending its connect token."""
        tenants, bucket = self.limits.settings.tenants, self.limits.tenant_connects
        if tenants is None or bucket is None:
            return None
        values = principal.values(tenants.attribute)
        if not values:
            return None
        key = f"{principal.issuer}\0{values[0]}"
        if not await bucket.allow(key):
            raise _limited("tenant", "tenants.connects")
        return key

    async def _identify(
        self, auth: object, environ: Mapping[str, Any]
    ) -> tuple[BrowserSession | None, VerifiedToken, Principal]:
        """(the browser session or None, the verified token, its principal)."""
        credential = find_credential(
            auth,
            environ,
            cookie_name=self.sessions.cookie_name if self.sessions else SESSION_COOKIE,
            allow_query=self.live.settings.server.insecure_allow_query_token,
        )
        session, token = await self._token_of(credential)
        verified = await self.providers.verifier.verify(token)
        if session is None:
            session = await self._handed_to(verified)
        return session, verified, self._principal(verified)

    def _principal(self, verified: VerifiedToken) -> Principal:
        return self.live.policy.principal_from_claims(verified.claims, verified.issuer.name)

    async def _handed_to(self, verified: VerifiedToken) -> BrowserSession | None:
        """The browser session ``/auth/token`` handed this token to, whatever the token
        says (many providers put no ``sid`` in access tokens): its sockets end with it.

        :raises TokenRevoked: that session has ended.
        """
        return await self.sessions.token_session(verified.fingerprint) if self.sessions else None

    async def _token_of(self, credential: Credential) -> tuple[BrowserSession | None, str]:
        """(the browser session or None, access token) of a credential."""
        if credential.source != "cookie":
            return None, credential.value
        resolved = await self.sessions.resolve(credential.value) if self.sessions else None
        if resolved is None:
            raise _NoSession()
        return resolved

    def disconnected(self, sid: str, eio_sid: str | None, reason: str) -> None:
        """A namespace connection ended (either side)."""
        live = self.connections.get(sid)
        rooms = tuple(sorted(live.rooms)) if live is not None else ()  # (removal empties it)
        connection = self.connections.remove(sid)
        if connection is None:
            return
        principal = connection.principal
        self.observe(
            "auth.disconnect", issuer=principal.issuer, sub=principal.subject, reason=str(reason)
        )
        if self.recovery is not None:
            # a drain closes every session ("server disconnect"): socket.io's "server
            # shutting down", recoverable on another node
            drained = self.closing and str(reason) == "server disconnect"
            final = SHUTTING_DOWN if drained else str(reason)
            self.recovery.closed(connection, final, rooms)
        if eio_sid is not None:
            # The transport stays open for a new authenticated connect, for a while.
            self._await_authentication(eio_sid, self.limits.address(connection.ip)[0])

    # -- auth:refresh ---------------------------------------------------------------------

    async def refresh(self, connection: Connection, payload: object) -> dict[str, Any]:
        """``auth:refresh {token}``: the same user and issuer, with a new token."""
        if not isinstance(payload, dict) or not isinstance(payload.get("token"), str):
            raise InvalidPayload("auth:refresh takes {token}")
        verified = await self.providers.verifier.verify(payload["token"])
        principal = self._principal(verified)
        old = connection.principal
        if (principal.issuer, principal.subject) != (old.issuer, old.subject):
            self.observe("auth.refresh.refused", sub=old.subject, code="forbidden")
            raise Forbidden("a refreshed token must be for the same user and issuer")
        if not self.live.policy.namespace(principal, connection.namespace):
            raise Forbidden("the refreshed token may not use this namespace")
        session = await self._handed_to(verified)  # (refused when its session has ended)
        if session is not None:
            if connection.web_session not in (None, session.id):
                raise Forbidden("the token belongs to another browser session")
            connection.web_session, connection.session_ends_at = session.id, session.ends_at
        self.connections.replace_principal(connection, principal)
        connection.expires_at, connection.fingerprint = verified.expires_at, verified.fingerprint
        connection.claims = verified.claims
        connection.generation += 1
        await self.rooms.reconcile(connection)
        self.timers.expiry(connection)
        self.observe("auth.refresh", issuer=principal.issuer, sub=principal.subject)
        return {"ok": True, "expires_in": max(0, round(verified.expires_at - self.clock()))}


class _Limited(RateLimited):
    """``rate_limited``, naming the limit and the kind of key it counts (metrics)."""

    def __init__(self, message: str, limit: str, key_kind: str) -> None:
        super().__init__(message)
        self.limit, self.key_kind = limit, key_kind


_WHO = {"address": "address", "range": "address", "user": "user", "tenant": "tenant"}


def _limited(key_kind: str, limit: str) -> _Limited:
    message = f"too many connections or connection attempts from this {_WHO[key_kind]}"
    return _Limited(message, limit, key_kind)


def _limit_of(refusal: SsoioError) -> dict[str, str]:
    if isinstance(refusal, _Limited):
        return {"limit": refusal.limit, "key_kind": refusal.key_kind}
    return {}


class _NoSession(AuthenticationError):
    code = "token_missing"
    default_message = "the session cookie names no active session; sign in again"


def transport_of(environ: Mapping[str, Any]) -> str:
    query = str(environ.get("QUERY_STRING", ""))
    return "websocket" if "transport=websocket" in query else "polling"


def _operator_detail(refusal: SsoioError) -> dict[str, Any]:
    """What the token carried against what was expected (issue #16), for the audit line
    only: the client gets the code and short message alone."""
    return {"detail": refusal.detail} if refusal.detail else {}
