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

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sized
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import socketio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ssoio.audit import Observer
from ssoio.clock import Clock, system_clock
from ssoio.cluster.bus import ClusterBus
from ssoio.cluster.node import link, recovery_parts, shared_limiter
from ssoio.cluster.state import RedisReplayCache, RedisSessionStore
from ssoio.config.model import IssuerSettings, Settings
from ssoio.config.policy import BUILTIN_EVENTS, EventRule, FieldSpec, RequirementSpec
from ssoio.errors import ConfigError, Problem, SsoioError
from ssoio.metrics import Metrics
from ssoio.oidc.discovery import ProviderMetadata
from ssoio.oidc.families import guess_family
from ssoio.oidc.providers import IdentityProviders
from ssoio.policy.engine import Policy
from ssoio.policy.events import CompiledEvent
from ssoio.realtime.gateway import Gateway, Handler
from ssoio.responses import error_response
from ssoio.settings import CHECKS, load_settings
from ssoio.transport.gates import select
from ssoio.transport.guard import TransportGuard
from ssoio.transport.paths import socket_server
from ssoio.transport.server import SocketServerBase
from ssoio.web.admin import admin_routes
from ssoio.web.api import api_routes
from ssoio.web.auth import BrowserLogin
from ssoio.web.headers import SecurityHeaders
from ssoio.web.health import health_routes
from ssoio.web.landing import landing_routes
from ssoio.web.metrics import metrics_route
from ssoio.web.origin_guard import OriginGuard
from ssoio.web.session_check import check_sessions
from ssoio.web.sessions import MemorySessionStore, SessionStore, WebSession

__all__ = ["SsoServer"]

log = logging.getLogger(__name__)


class SsoServer:
    """An ssoio node: Socket.IO at ``/socket.io/``, browser login at ``/auth/``, health
    probes, the server API.

    :param settings: the validated configuration.
    :param clock: the time source (tests pass a fake one).
    :param http: the HTTP client for identity providers (tests pass a mock transport).
    :param sessions: where browser sessions live (default: this process's memory).
    :param landing: answer ``GET /`` with the landing page (``ssoio serve``; an embedding
        app usually has its own ``/``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        http: httpx.AsyncClient | None = None,
        sessions: SessionStore | None = None,
        config_path: str | None = None,
        landing: bool = False,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self.policy = Policy(settings)
        self.metrics = (
            Metrics([*settings.events, *BUILTIN_EVENTS]) if settings.metrics.enabled else None
        )
        self.observe = Observer(self.metrics)
        self.providers = IdentityProviders(settings, clock=clock, http=http, observe=self.observe)
        self._auto_presets: dict[str, str] = {}  # issuer name -> what "auto" chose
        self.providers.discovery.on_metadata = self._metadata_known
        self.bus: ClusterBus | None = None
        if settings.cluster.enabled:
            self.bus = ClusterBus(settings.cluster, self.observe)
        self.login: BrowserLogin | None = None  # (set while the gateway is built)
        # which transport pieces run ssoio's classes (ssoio.transport.gates): read by
        # ssoio.serving for uvicorn's protocols too
        self.transport = select(settings.server.transport)
        self.sio = socket_server(settings, self._gateway_for(clock, sessions), self.transport)
        self.gateway = self.sio.gateway
        if self.bus is not None:
            link(self.gateway, self.bus, self._reload_from_cluster)
        if settings.server.insecure_allow_query_token:
            log.warning("INSECURE: server.insecure_allow_query_token is on; tokens in URLs "
                        "end up in proxy and access logs")  # fmt: skip
        if self.metrics is not None:
            self.metrics.add_gauges(self._live_values)
        routes = [*health_routes(self.providers, lambda: self.gateway.closing)]
        if self.metrics is not None and not settings.metrics.port:
            routes.append(metrics_route(self.metrics, settings.metrics))
        if self.login is not None:
            routes += self.login.routes()
            if settings.admin.enabled:
                routes += admin_routes(self.login)
            if landing:
                routes += landing_routes(self.login)
        if settings.api.enabled:
            routes += api_routes(self.gateway, self.reload_file)
        routes += client_routes()
        self.http_app = Starlette(
            routes=routes,
            lifespan=self.lifespan,
            # Anything a route did not answer itself (the shared session store down...)
            # still gets its code, never a bare 500.
            exception_handlers={SsoioError: _ssoio_error, ClientDisconnect: _client_gone},
        )
        socket_app = socketio.ASGIApp(self.sio, other_asgi_app=self.http_app)
        checked = TransportGuard(
            socket_app, self.sio.eio.max_http_buffer_size, self.sio.close_session
        )
        guarded = OriginGuard(checked, lambda: self.gateway.origins, self.observe)
        https = settings.server.public_url.startswith("https://")
        self.asgi_app: ASGIApp = SecurityHeaders(guarded, https=https)

    def _gateway_for(
        self, clock: Clock, store: SessionStore | None
    ) -> Callable[[SocketServerBase[Gateway]], Gateway]:
        """How the Socket.IO server builds its gateway: everything it needs, at once."""
        settings, bus = self.settings, self.bus
        shared = shared_limiter(bus, settings, clock) if bus is not None else None
        timing = self.metrics.handling.observe if self.metrics is not None else None

        def login(gateway: Gateway) -> BrowserLogin:
            self.login = self._browser_login(gateway, store or self._session_store(clock), clock)
            return self.login

        recovery, live_elsewhere = recovery_parts(bus, settings) if bus else (None, None)

        def gateway_for(transport: SocketServerBase[Gateway]) -> Gateway:
            return Gateway(
                settings, self.providers, self.policy, transport, clock=clock,
                observe=self.observe, cluster=bus, shared_limits=shared, timing=timing,
                sessions=login if settings.login.enabled else None, recovery_store=recovery,
                live_elsewhere=live_elsewhere, node=bus.node_id if bus else "",
            )  # fmt: skip

        return gateway_for

    def _browser_login(self, gateway: Gateway, store: SessionStore, clock: Clock) -> BrowserLogin:
        settings = self.settings
        if self.bus is None:
            return BrowserLogin(settings, self.providers, self.policy, gateway, store, clock)
        ttl = settings.login.logout_token_max_age_s * 2
        replay = RedisReplayCache(self.bus.redis, f"{settings.cluster.channel}:jti", ttl)
        return BrowserLogin(
            settings, self.providers, self.policy, gateway, store, clock,
            shared_limits=shared_limiter(self.bus, settings, clock), replay=replay,
        )  # fmt: skip

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
        spec = {"requires": requires, "fields": dict(fields or {})}
        rule = EventRule.model_validate(spec, context=CHECKS.context())  # (the policy's)
        compiled = CompiledEvent.compile(event, rule)

        def register(handler: Handler) -> Handler:
            self.gateway.register(event, compiled, handler)
            if self.metrics is not None:
                self.metrics.know_event(event)
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

    async def reload(self, settings: Settings) -> dict[str, Any]:
        """Apply a new, already validated configuration to this running node.

        Live connections are kept and re-evaluated (``Gateway.apply``). Settings read only
        at start (listener, TLS, metrics port, browser login) need a restart; their keys
        are reported.
        """
        restart = [key for key in RESTART_KEYS if _dig(settings, key) != _dig(self.settings, key)]
        policy = Policy(settings)
        for issuer in settings.issuers:  # "auto" presets already known stay chosen
            metadata = self.providers.discovery.cached(issuer)
            if metadata is not None:
                self._metadata_known(issuer, metadata, policy)
        self.providers.apply(settings)
        counts = await self.gateway.apply(settings, policy)
        self.settings, self.policy = settings, policy
        result = {"result": "applied", **counts, "restart_required": restart}
        self.observe("config.reload", **result)
        return result

    def _metadata_known(
        self, issuer: IssuerSettings, metadata: ProviderMetadata, policy: Policy | None = None
    ) -> None:
        """``preset = "auto"``: the provider's metadata chooses the preset of ``policy``
        (the live one by default); each new choice is said in the audit trail."""
        if issuer.claims.preset != "auto":
            return
        family = guess_family(metadata.raw)
        (policy or self.policy).use_preset(issuer.name, family.preset)
        if self._auto_presets.get(issuer.name) == family.preset:
            return
        self._auto_presets[issuer.name] = family.preset
        self.observe(
            "claims.preset.chosen", issuer=issuer.name, preset=family.preset,
            product=family.product, evidence=family.evidence,
        )  # fmt: skip

    def _session_store(self, clock: Clock) -> SessionStore:
        if self.bus is None:
            return MemorySessionStore(clock, self.settings.login.max_sessions)
        secret = self.settings.login.session_secret.get_secret_value()
        prefix = self.settings.cluster.channel
        return RedisSessionStore(self.bus.redis, prefix, secret, clock, WebSession.from_dict)

    async def _reload_from_cluster(self) -> None:
        """Another node reloaded: load this node's own copy of the file (same content)."""
        if self.config_path is None:
            return
        try:
            await self.reload_file(broadcast=False)
        except ConfigError as refused:
            log.error("config.reload.refused problems=%d", len(refused.problems))

    async def reload_file(
        self, path: str | None = None, *, broadcast: bool = True
    ) -> dict[str, Any]:
        """Load, validate and apply the configuration file; a bad one changes nothing.

        :raises ConfigError: every problem of the refused file.
        """
        target = path or self.config_path
        if target is None:
            raise ConfigError([Problem("", "this server was not started from a file")])
        try:
            settings = load_settings(target)
        except ConfigError as refused:
            self.observe("config.reload", result="refused", problems=len(refused.problems))
            raise
        result = await self.reload(settings)
        if broadcast and self.bus is not None:  # every node applies its own copy
            result["nodes_told"] = await self.bus.publish("reload", {})
        return result

    async def drain(self, grace_s: float | None = None) -> None:
        """Graceful shutdown: refuse new sessions, let in-flight events finish (bounded),
        then close every Engine.IO session so clients reconnect to another node."""
        grace = self.settings.server.shutdown_grace_s if grace_s is None else grace_s
        self.gateway.closing = True
        pending = list(self.sio.pending_events)
        if pending:
            await asyncio.wait(pending, timeout=grace)
        self.observe(
            "server.drain", connections=len(self.gateway.connections), pending=len(pending)
        )
        if self.sio.eio.sockets:  # (python-engineio fails on an empty server here)
            # A long-polling client that went away never fetches its close packet and
            # python-engineio would wait for it forever: the close is bounded too.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sio.eio.disconnect(), max(grace, 1.0))

    def _live_values(self) -> dict[str, Any]:
        connections: dict[str, int] = {}
        for connection in self.gateway.connections:
            connections[connection.namespace] = connections.get(connection.namespace, 0) + 1
        store = self.login.store if self.login is not None else None
        verifier = self.providers.verifier
        return {
            "connections": connections or {"/": 0},
            "unauthenticated": self.gateway.unauthenticated_sessions,
            "rooms": self.gateway.connections.sizes()["rooms"],
            "browser_sessions": len(store) if isinstance(store, Sized) else 0,
            "token_cache_hits": verifier.cache_hits,
            "token_cache_lookups": verifier.cache_lookups,
        }

    @asynccontextmanager
    async def lifespan(self, _app: object = None) -> AsyncIterator[None]:
        """Start-up and shut-down; pass it as the host app's lifespan when embedding.

        Keys are loaded in the background: start-up never waits for a slow provider (or
        for one served by this same process, which only answers once it listens); until
        they are loaded /readyz says so, and failed loads are retried with a back-off
        without waiting for a client (``IdentityProviders.keep_fresh``).
        """
        self.gateway.start()
        tasks = [asyncio.create_task(self.providers.keep_fresh(), name="ssoio-keys")]
        if self.login is not None and self.settings.login.session_check_s:
            checks = check_sessions(self.login, self.settings.login.session_check_s)
            tasks.append(asyncio.create_task(checks, name="ssoio-session-checks"))
        if self.bus is not None:
            await self.bus.start()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.gateway.stop()
            if self.bus is not None:
                await self.bus.stop()
            await self.providers.aclose()


# Read only when the node starts (listeners, routes, the Socket.IO server, clients):
# a reload reports them as needing a restart instead of pretending to apply them.
RESTART_KEYS = (
    "server.host", "server.port", "server.public_url", "server.tls",
    "server.websocket_compression", "server.trusted_proxies", "realtime.max_payload_bytes",
    "server.max_request_line_bytes", "server.max_header_line_bytes", "server.max_header_bytes",
    "server.max_headers", "server.max_body_bytes", "server.header_timeout_s",
    "server.body_timeout_s", "server.max_connections_per_address",
    "server.max_partial_heads_per_address", "server.transport",
    "realtime.ping_interval_s", "realtime.ping_timeout_s", "policy.namespaces", "api",
    "login", "logging", "metrics", "cluster",
)  # fmt: skip


async def _ssoio_error(_request: Any, error: Exception) -> Response:
    assert isinstance(error, SsoioError)
    return error_response(error)


async def _client_gone(_request: Any, _error: Exception) -> Response:
    # The client went away, or the HTTP edge closed a request whose body came too slowly
    # or grew too large (ssoio.transport.protocols): nobody reads this answer, and nothing failed.
    return Response(status_code=400)


def client_routes() -> list[Route]:
    """``/ssoio/client.js`` (the browser helper) and ``/ssoio/socket.io.min.js`` (the
    official client it wraps, shipped in the package: no CDN)."""
    files = {
        "client.js": STATIC / "client.js",
        "socket.io.min.js": STATIC / "vendor" / "socket.io.min.js",
    }

    def serve(path: Path) -> Callable[[Any], Awaitable[Response]]:
        async def file(_request: Any) -> Response:
            return FileResponse(path, media_type="text/javascript", headers=_CACHE)

        return file

    return [Route(f"/ssoio/{name}", serve(path)) for name, path in files.items()]


STATIC = Path(__file__).parent / "demo" / "static"
_CACHE = {"Cache-Control": "public, max-age=3600"}


def _dig(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
