"""``SsoServer``: ssoio as one object, to run (``ssoio serve``) or embed in an app.

::

    sso = SsoServer(load_settings("ssoio.toml"))

    @sso.on("orders:update", requires="role:sales", fields={"order": "string"})
    async def update(principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
        ...
        await sso.emit("orders:changed", {"order": payload["order"]}, room="tenant:acme:orders")
        return {"saved": True}              # the ack: {"ok": true, "saved": true}

    app = Starlette(routes=[Mount("/", app=sso.asgi_app)], lifespan=sso.lifespan)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import socketio
from starlette.applications import Starlette
from starlette.types import ASGIApp

from ssoio.clock import Clock, system_clock
from ssoio.config.model import Settings
from ssoio.config.policy import EventRule, FieldSpec, RequirementSpec
from ssoio.oidc.providers import IdentityProviders
from ssoio.policy.engine import Policy
from ssoio.policy.events import CompiledEvent
from ssoio.realtime.gateway import Gateway, Handler
from ssoio.realtime.server import SocketServer
from ssoio.web.api import api_routes
from ssoio.web.auth import BrowserLogin
from ssoio.web.health import health_routes
from ssoio.web.origin_guard import OriginGuard
from ssoio.web.sessions import MemorySessionStore, SessionStore

__all__ = ["SsoServer"]

log = logging.getLogger(__name__)


class SsoServer:
    """An ssoio node: Socket.IO at ``/socket.io/``, browser login at ``/auth/``, health
    probes, the server API.

    :param settings: the validated configuration.
    :param clock: the time source (tests pass a fake one).
    :param http: the HTTP client for identity providers (tests pass a mock transport).
    :param sessions: where browser sessions live (default: this process's memory).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        http: httpx.AsyncClient | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.settings = settings
        self.policy = Policy(settings)
        self.providers = IdentityProviders(settings, clock=clock, http=http)

        def gateway_for(transport: SocketServer) -> Gateway:
            return Gateway(settings, self.providers, self.policy, transport, clock=clock)

        self.sio = SocketServer(settings, gateway_for)
        self.gateway = self.sio.gateway
        self.login: BrowserLogin | None = None
        if settings.login.enabled:
            self.login = BrowserLogin(settings, self.providers, self.policy, self.gateway,
                                      sessions or MemorySessionStore(clock), clock)  # fmt: skip
            self.gateway.sessions = self.login
        if settings.server.insecure_allow_query_token:
            log.warning("INSECURE: server.insecure_allow_query_token is on; tokens in URLs "
                        "end up in proxy and access logs")  # fmt: skip
        routes = [*health_routes(self.providers)]
        if self.login is not None:
            routes += self.login.routes()
        if settings.api.enabled:
            routes += api_routes(self.gateway)
        self.http_app = Starlette(routes=routes, lifespan=self.lifespan)
        socket_app = socketio.ASGIApp(self.sio, other_asgi_app=self.http_app)
        self.asgi_app: ASGIApp = OriginGuard(socket_app, self.gateway.origins)

    def on(
        self,
        event: str,
        *,
        requires: RequirementSpec,
        fields: Mapping[str, str | FieldSpec | Mapping[str, Any]] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register ``handler(principal, payload)`` for a client event.

        The caller must meet ``requires`` (and the config's own rule for ``event``, if
        any); ``fields`` declares the payload (undeclared fields are refused). The
        handler's return value is merged into the ack: ``{"ok": true, **result}``.
        """
        rule = EventRule.model_validate({"requires": requires, "fields": dict(fields or {})})
        compiled = CompiledEvent.compile(event, rule)

        def register(handler: Handler) -> Handler:
            self.gateway.register(event, compiled, handler)
            return handler

        return register

    async def emit(self, event: str, data: Mapping[str, Any], *, room: str) -> None:
        """Send ``event`` to ``room`` through ssoio, so field visibility applies."""
        await self.gateway.deliver(room, event, data)

    async def disconnect_user(
        self, sub: str, code: str = "kicked", issuer: str | None = None
    ) -> int:
        """Disconnect every socket of ``sub``, sending ``auth:revoked {code}`` first."""
        return await self.gateway.disconnect_user(sub, code, issuer)

    async def disconnect_session(
        self, issuer: str, session_id: str, code: str = "logged_out"
    ) -> int:
        """Disconnect every socket opened with the IdP session ``session_id``."""
        return await self.gateway.disconnect_session(issuer, session_id, code)

    @asynccontextmanager
    async def lifespan(self, _app: object = None) -> AsyncIterator[None]:
        """Start-up and shut-down; pass it as the host app's lifespan when embedding."""
        self.gateway.start()
        try:
            await self.providers.warm()
        except Exception as exc:  # keys load lazily later; /readyz reports the state
            log.warning("startup.warm.failed kind=%s", type(exc).__name__)
        try:
            yield
        finally:
            await self.gateway.stop()
            await self.providers.aclose()
