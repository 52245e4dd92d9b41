"""Admission: who may open an Engine.IO session, who a connection is (connect, and
``auth:refresh`` later), and setting an admitted connection up.

A connect passes, in order: the origin, the per-address limits, the credential (the first
present decides, DESIGN.md), the token's verification, the claim mapping to a principal,
and the namespace rule. Refusals are ``SsoioError``s with their wire code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ssoio.addresses import client_key
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
from ssoio.realtime.limits import GatewayLimits
from ssoio.realtime.live import LiveConfig
from ssoio.realtime.pending import PendingSessions
from ssoio.realtime.ratelimit import TokenBucket
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
        self.closing = False  # set by a graceful shutdown: no new sessions

    # -- Engine.IO sessions ---------------------------------------------------------------

    def session_opened(self, eio_sid: str, ip: str) -> bool:
        """A new Engine.IO session; False refuses it (shutting down, or too many
        unauthenticated sessions from this address)."""
        if self.closing:
            return False
        if self.pending.held_by(ip) >= self.live.settings.realtime.max_unauthenticated_per_ip:
            self.observe("auth.session.refused", ip=ip, code="rate_limited")
            return False
        self._await_authentication(eio_sid, ip)
        return True

    def session_closed(self, eio_sid: str) -> None:
        self.pending.remove(eio_sid)

    def _await_authentication(self, eio_sid: str, ip: str) -> None:
        if self.pending.add(eio_sid, ip):
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
            )  # fmt: skip
            raise
        self.pending.remove(eio_sid)
        self.connections.add(connection)
        await self.rooms.auto_join(connection)
        self.timers.expiry(connection)
        principal = connection.principal
        self.observe(
            "auth.connect.accepted", issuer=principal.issuer, sub=principal.subject,
            ip=connection.ip, origin=connection.origin, namespace=namespace,
            transport=connection.transport,
        )  # fmt: skip
        return connection

    async def _admit(
        self, sid: str, namespace: str, environ: Mapping[str, Any], auth: object
    ) -> Connection:
        ip, origin = str(environ.get("REMOTE_ADDR", "")), environ.get("HTTP_ORIGIN")
        if not self.live.origins.allows(origin):
            raise OriginDenied()
        key = client_key(ip)
        if not await self.limits.connects.allow(key) or not await self.limits.failed_auth.peek(key):
            raise RateLimited("too many connection attempts from this address")
        try:
            session, verified, principal = await self._identify(auth, environ)
        except AuthenticationError:
            await self.limits.failed_auth.allow(key)
            raise
        decision = self.live.policy.namespace(principal, namespace)
        if not decision:
            raise NamespaceForbidden(decision.reason)
        bucket = TokenBucket.full(self.live.settings.limits.events_per_connection, self.clock())
        return Connection(
            sid=sid, namespace=namespace, principal=principal, expires_at=verified.expires_at,
            leeway_s=verified.issuer.leeway_s, fingerprint=verified.fingerprint, ip=ip,
            origin=origin, transport=transport_of(environ), bucket=bucket,
            web_session=session.id if session else None, claims=verified.claims,
            session_ends_at=session.ends_at if session else math.inf,
        )  # fmt: skip

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
        connection = self.connections.remove(sid)
        if connection is None:
            return
        principal = connection.principal
        self.observe(
            "auth.disconnect", issuer=principal.issuer, sub=principal.subject, reason=str(reason)
        )
        if eio_sid is not None:
            # The transport stays open for a new authenticated connect, for a while.
            self._await_authentication(eio_sid, connection.ip)

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
