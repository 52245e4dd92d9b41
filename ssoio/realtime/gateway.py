"""The gateway: what ssoio does for each connect, event and timer, independent of the
Socket.IO plumbing (``ssoio.transport`` adapts python-socketio to it and calls it through
``ssoio.transport.ports.SocketApp``).

``Gateway`` is a facade over parts with one concern each, wired here through their
constructors:

* ``admission.Admission``: Engine.IO sessions counted per address until they
  authenticate; connect (credential, verification, limits, principal, auto-join),
  ``auth:refresh``, disconnect;
* ``dispatch.Dispatcher``: the guard every client event passes, built-in events,
  embedded handlers, relay and kick events;
* ``rooms.Rooms``: room membership, presence, filtered delivery;
* ``revocation.Revocation``: disconnects by user, browser session and IdP session, kicks;
* ``timers.Timers``: the timer loop (expiry warnings, expiry, unauthenticated timeouts);
* ``reload.Reloader``: a reloaded configuration applied to live connections;
* ``recovery.Recovery``: connection state recovery (``[recovery]``): session records and
  the room event log, in memory or in the cluster's Redis (``cluster.recovery``);

all reading the configuration in force from one ``live.LiveConfig``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ssoio.audit import Observer
from ssoio.clock import Clock
from ssoio.config.model import Settings
from ssoio.errors import RateLimited
from ssoio.oidc.providers import IdentityProviders
from ssoio.policy.engine import Policy
from ssoio.policy.events import CompiledEvent
from ssoio.policy.principal import Principal
from ssoio.policy.visibility import FieldVisibility
from ssoio.realtime.admission import Admission
from ssoio.realtime.connections import Connection, Connections
from ssoio.realtime.dispatch import Dispatcher, Handler
from ssoio.realtime.lifetime import Scheduler
from ssoio.realtime.limits import GatewayLimits
from ssoio.realtime.live import LiveConfig
from ssoio.realtime.origins import OriginPolicy
from ssoio.realtime.pending import PendingSessions
from ssoio.realtime.recovery import LiveElsewhere, Recovery, RecoveryStore
from ssoio.realtime.recovery_log import MemoryRecoveryStore
from ssoio.realtime.reload import Reloader
from ssoio.realtime.revocation import Revocation
from ssoio.realtime.rooms import Rooms, room_key
from ssoio.realtime.seams import Cluster, Limiter, LimiterFactory, SessionResolver, Transport
from ssoio.realtime.timers import Timers

__all__ = [
    "Gateway",
    "Handler",
    "Limiter",
    "SessionResolver",
    "SessionsFactory",
    "Transport",
    "room_key",
]

# The browser-login seam is built from the gateway it ends sockets through (a refused
# token refresh logs its session out): a factory, so that neither is assigned to the
# other after construction.
SessionsFactory = Callable[["Gateway"], SessionResolver]


class Gateway:
    """Connections, events and timers of one node.

    :param cluster: the other nodes, when nodes share state over Redis.
    :param shared_limits: per-address limiters shared by a cluster's nodes.
    :param sessions: builds the browser-login seam (cookie connects), if login is on.
    :param timing: receives each event's handling time, in seconds (metrics).
    """

    def __init__(
        self,
        settings: Settings,
        providers: IdentityProviders,
        policy: Policy,
        transport: Transport,
        *,
        clock: Clock,
        observe: Observer | None = None,
        cluster: Cluster | None = None,
        shared_limits: LimiterFactory | None = None,
        sessions: SessionsFactory | None = None,
        timing: Callable[[float], None] | None = None,
        recovery_store: RecoveryStore | None = None,
        live_elsewhere: LiveElsewhere | None = None,
        node: str = "",
    ) -> None:
        self.observe = observe = observe or Observer()
        self.providers, self.transport, self.clock = providers, transport, clock
        self.live = live = LiveConfig(settings, policy)
        self.limits = GatewayLimits(settings.limits, clock, shared_limits, settings.realtime)
        self.pending = PendingSessions()
        self.connections = connections = Connections()
        self.recovery = self._recovery(recovery_store, live_elsewhere, node)
        self.rooms = Rooms(live, connections, transport, observe, cluster, self.recovery)
        self.revocation = Revocation(live, connections, transport, observe, cluster,
                                     self.recovery)  # fmt: skip
        self.timers = Timers(live, clock, connections, self.pending, transport,
                             self.revocation, observe)  # fmt: skip
        self.reloader = Reloader(live, self.limits, connections, self.rooms, self.revocation)
        resolver = sessions(self) if sessions is not None else None
        self.admission = Admission(live, providers, clock, self.limits, connections,
                                   self.pending, self.rooms, self.timers, observe,
                                   resolver, self.recovery)  # fmt: skip
        self.dispatcher = Dispatcher(live, clock, self.limits, connections, self.admission,
                                     self.rooms, self.revocation, observe, timing)  # fmt: skip

    def _recovery(
        self, store: RecoveryStore | None, live_elsewhere: LiveElsewhere | None, node: str
    ) -> Recovery | None:
        """Connection state recovery, when ``[recovery] enabled``: over ``store`` (the
        cluster's), else in this node's memory."""
        settings = self.live.settings.recovery
        if not settings.enabled:
            return None
        store = store or MemoryRecoveryStore(
            self.clock, settings.max_disconnection_s, settings.max_events_per_room,
            settings.max_events_total, settings.max_rooms,
        )  # fmt: skip
        return Recovery(self.live, store, self.clock, self.observe, node, live_elsewhere,
                        self.connections)  # fmt: skip

    # -- connection state recovery (what the Socket.IO server asks) ---------------------------

    def pid_of(self, sid: str) -> str | None:
        """The private session id for the CONNECT answer (None: recovery is off)."""
        connection = self.connections.get(sid)
        return connection.pid if connection is not None else None

    def take_replay(self, sid: str) -> tuple[list[list[Any]], str | None]:
        """What a recovered connection is sent right after its CONNECT answer (``[event,
        *args]`` arrays), and the offset of the last one: live room events up to it were
        replayed already."""
        connection = self.connections.get(sid)
        if connection is None or not connection.replay:
            return [], None
        replay, connection.replay = connection.replay, []
        return replay, connection.fence

    # -- the configuration in force ---------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.live.settings

    @property
    def policy(self) -> Policy:
        return self.live.policy

    @property
    def origins(self) -> OriginPolicy:
        return self.live.origins

    def relay_visibility(self, event: str) -> FieldVisibility | None:
        return self.live.relay_visibility(event)

    async def apply(self, settings: Settings, policy: Policy) -> dict[str, int]:
        """Use a reloaded configuration on live connections (``reload.Reloader``)."""
        return await self.reloader.apply(settings, policy)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """Set by a graceful shutdown: no new Engine.IO sessions."""
        return self.admission.closing

    @closing.setter
    def closing(self, value: bool) -> None:
        self.admission.closing = value

    def start(self) -> None:
        """Start the timer loop (idempotent; also called lazily on first connect)."""
        self.timers.start()

    async def stop(self) -> None:
        await self.timers.stop()
        if self.recovery is not None:
            await self.recovery.drain()

    async def tick(self) -> None:
        """Act on every deadline due now (the timer loop calls this; tests may too)."""
        await self.timers.tick()

    @property
    def scheduler(self) -> Scheduler:
        return self.timers.scheduler

    # -- what the Socket.IO server calls (``server.SocketServer``) --------------------------

    def session_opened(self, eio_sid: str, ip: str) -> bool | RateLimited:
        """A new Engine.IO session; False or an error refuses it."""
        return self.admission.session_opened(eio_sid, ip)

    def session_closed(self, eio_sid: str) -> None:
        self.admission.session_closed(eio_sid)

    @property
    def unauthenticated_sessions(self) -> int:
        return len(self.pending)

    async def connect(
        self, sid: str, eio_sid: str, namespace: str, environ: Mapping[str, Any], auth: object
    ) -> Connection:
        """Authenticate a namespace connect. :raises SsoioError: the refusal."""
        return await self.admission.connect(sid, eio_sid, namespace, environ, auth)

    def disconnected(self, sid: str, eio_sid: str | None, reason: str) -> None:
        self.admission.disconnected(sid, eio_sid, reason)

    async def handle_event(self, sid: str, name: str, args: list[Any]) -> dict[str, Any] | None:
        """Guard and run one client event; the ack body (``None``: drop silently)."""
        return await self.dispatcher.handle_event(sid, name, args)

    def register(self, name: str, event: CompiledEvent, handler: Handler) -> None:
        """An embedding application's handler (``@sso.on``)."""
        self.dispatcher.register(name, event, handler)

    # -- rooms and delivery (the server API, embedding apps, the cluster bus) ----------------

    async def deliver(
        self, room: str, event: str, payload: Mapping[str, Any],
        visibility: FieldVisibility | None = None, namespace: str = "/",
    ) -> None:  # fmt: skip
        """Emit ``event`` to ``room`` with field visibility (``rooms.Rooms.deliver``)."""
        await self.rooms.deliver(room, event, payload, visibility, namespace)

    async def deliver_here(
        self, room: str, event: str, payload: Mapping[str, Any],
        visibility: FieldVisibility, namespace: str, offset: str | None = None,
    ) -> None:  # fmt: skip
        await self.rooms.deliver_here(room, event, payload, visibility, namespace, offset)

    def members_here(self, room: str) -> list[Principal]:
        return self.rooms.members_here(room)

    # -- revocation (logout, the server API, the cluster bus) --------------------------------

    async def revoke(self, connection: Connection, code: str) -> None:
        await self.revocation.revoke(connection, code)

    async def disconnect_user(
        self, sub: str, code: str = "kicked", issuer: str | None = None, *,
        actor: Principal | None = None, same_attributes: tuple[str, ...] = (),
    ) -> int:  # fmt: skip
        """Every connection of ``sub``, on every node (``revocation.Revocation``)."""
        return await self.revocation.disconnect_user(
            sub, code, issuer, actor=actor, same_attributes=same_attributes
        )

    async def disconnect_web_session(self, web_session: str, code: str) -> int:
        return await self.revocation.disconnect_web_session(web_session, code)

    async def disconnect_session(self, issuer: str, session_id: str, code: str) -> int:
        return await self.revocation.disconnect_session(issuer, session_id, code)

    async def revoke_here(self, body: dict[str, Any]) -> int:
        return await self.revocation.revoke_here(body)

    async def kick_here(self, event_name: str, actor: Principal, sub: str) -> int:
        return await self.revocation.kick_here(event_name, actor, sub)
