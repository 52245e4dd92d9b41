"""A live ssoio node for hostile-input tests, and the check that nothing else broke.

``running_node`` serves ``config/ssoio.example.toml`` (pointed at a ``FakeIdp``) with uvicorn
on 127.0.0.1, configured as ``ssoio serve`` does, inside the test's event loop, with a fake
clock the test moves by hand. Everything the node answers is recorded: HTTP statuses and
bodies, WebSocket close codes, and the records of ssoio's, uvicorn's, python-socketio's and
asyncio's loggers.

``Node.assert_healthy()`` is what every negative case ends with: a client connected before
the attack still receives a broadcast, a new valid client connects, no 5xx and no stack
trace was produced, no token or secret appears in any answer or log line, the provider was
asked for keys no more often than the case expects, and no session, connection or room is
left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import tomllib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ssoio.app import SsoServer
from ssoio.config import Settings
from ssoio.serving import uvicorn_options
from ssoio.settings import validate_raw
from tests.interop.asgi_server import bound_port, quiet_config
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey, forge
from tests.support.raw_client import CONNECT, CONNECT_ERROR, RawSocket, SioPacket
from tests.support.transport_path import on_path

__all__ = [
    "AUDIENCE",
    "CLIENT_ID",
    "EXAMPLE",
    "GENEROUS_LIMITS",
    "ISSUER",
    "LogCapture",
    "Node",
    "StatusRecorder",
    "example_raw",
    "reference_claims",
    "running_node",
    "settings_from",
]

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "ssoio.example.toml"
ISSUER: Final = "https://idp.test/realms/acme"
AUDIENCE: Final = "ssoio-api"
CLIENT_ID: Final = "ssoio-web"
SETTLE_TIMEOUT_S: Final = 2.0
STOP_TIMEOUT_S: Final = 2.0
# Every test client connects from 127.0.0.1, mostly as the same few users, and the fake
# clock stands still (buckets never refill): the per-IP, per-user and per-connection rate
# limits get a suite-sized budget. The limits have cases of their own (test_limits.py).
GENEROUS_LIMITS: Final = {
    "connects_per_ip": {"rate": 1000, "burst": 100_000},
    "failed_auth_per_ip": {"rate": 1000, "burst": 100_000},
    "connects_per_user": {"rate": 1000, "burst": 100_000},
    "events_per_connection": {"rate": 1000, "burst": 10_000},
    "events_per_user": {"rate": 1000, "burst": 100_000},
}
WATCHED_LOGGERS: Final = ("ssoio", "uvicorn", "asyncio", "socketio", "engineio")

# The reference scenario (DESIGN.md), Keycloak-shaped.
_USERS: Final[dict[str, tuple[list[str], list[str], str, bool]]] = {
    "alice": (["admin", "staff"], ["/eng"], "acme", True),
    "bob": (["staff"], ["/sales"], "acme", True),
    "carol": ([], [], "globex", True),
    "dave": (["staff"], ["/eng"], "acme", False),
    "erin": ([], ["/sales"], "acme", True),
}


def reference_claims(user: str) -> dict[str, Any]:
    """The identity claims of one reference user (no times, issuer or audience)."""
    roles, groups, tenant, chat = _USERS[user]
    return {
        "sub": user,
        "preferred_username": user,
        "email": f"{user}@{tenant}.example",
        "realm_access": {"roles": roles},
        "groups": groups,
        "tenant": tenant,
        "scope": "openid profile email" + (" chat" if chat else ""),
        "client_id": CLIENT_ID,
        "azp": CLIENT_ID,
        "sid": f"idp-session-{user}",
    }


def example_raw() -> dict[str, Any]:
    """The example configuration as TOML gives it (before interpolation)."""
    with EXAMPLE.open("rb") as file:
        return tomllib.load(file)


def settings_from(
    raw: dict[str, Any] | None = None,
    *,
    issuer: str = ISSUER,
    limits: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> Settings:
    """The example configuration for ``issuer``, with sections merged over it."""
    document = raw if raw is not None else example_raw()
    document["limits"] = {**document.get("limits", {}), **(limits or GENEROUS_LIMITS)}
    for name, values in sections.items():
        document[name] = {**document.get(name, {}), **values}
    env = {"SSOIO_ISSUER": issuer, "SSOIO_AUDIENCE": AUDIENCE, "SSOIO_CLIENT_ID": CLIENT_ID}
    return validate_raw(document, env)


class LogCapture(logging.Handler):
    """Keeps every record of the watched loggers; ssoio's are lowered to DEBUG meanwhile."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._levels: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def install(self) -> None:
        for name in WATCHED_LOGGERS:
            logger = logging.getLogger(name)
            logger.addHandler(self)
        ssoio = logging.getLogger("ssoio")
        self._levels["ssoio"] = ssoio.level
        ssoio.setLevel(logging.DEBUG)

    def remove(self) -> None:
        for name in WATCHED_LOGGERS:
            logging.getLogger(name).removeHandler(self)
        logging.getLogger("ssoio").setLevel(self._levels.get("ssoio", logging.NOTSET))

    def texts(self) -> list[str]:
        """Every record as a log file would show it, stack traces included."""
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        return [formatter.format(record) for record in self.records]

    def audit(self, event: str | None = None) -> list[dict[str, Any]]:
        """Audit records (logger ``ssoio.audit``), optionally of one event name."""
        found: list[dict[str, Any]] = []
        for record in self.records:
            fields = getattr(record, "audit", None)
            if isinstance(fields, dict) and event in (None, fields.get("event")):
                found.append(fields)
        return found


@dataclass
class StatusRecorder:
    """ASGI middleware recording HTTP statuses and bodies and WebSocket close codes."""

    app: ASGIApp
    statuses: list[tuple[str, int]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))

        async def recording(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                self.statuses.append((path, int(message["status"])))
            elif kind == "http.response.body" and len(self.bodies) < 10_000:
                self.bodies.append(bytes(message.get("body", b""))[:65536])
            elif kind == "websocket.close":
                self.closes.append(int(message.get("code", 1000)))
            elif kind == "websocket.send" and message.get("text") and len(self.bodies) < 10_000:
                self.bodies.append(str(message["text"])[:65536].encode())
            await send(message)

        await self.app(scope, receive, recording)


@dataclass
class Node:
    """One running ssoio node and what a test needs around it."""

    url: str
    server: SsoServer
    idp: FakeIdp
    clock: FakeClock
    key: SigningKey
    logs: LogCapture
    recorder: StatusRecorder
    secrets: set[str] = field(default_factory=set)
    sockets: list[RawSocket] = field(default_factory=list)
    sessions_to_drop: list[str] = field(default_factory=list)  # browser sessions of a case
    sentinel: RawSocket | None = None
    sentinel_sid: str = ""
    baseline_rooms: frozenset[Any] = frozenset()
    requests_at_start: int = 0
    accepted_at_start: int = 0

    # -- tokens ---------------------------------------------------------------------------

    def claims(self, user: str = "erin", **overrides: Any) -> dict[str, Any]:
        now = int(self.clock())
        claims = {**reference_claims(user), "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                  "exp": now + 300, "jti": secrets.token_hex(8), **overrides}  # fmt: skip
        return {k: v for k, v in claims.items() if v is not ...}

    def token(
        self,
        user: str = "erin",
        *,
        key: SigningKey | bytes | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token of the reference user, signed by the IdP's key unless ``key`` says."""
        signer = key or self.key
        kid = signer.kid if isinstance(signer, SigningKey) else "hmac"
        head = {"alg": "RS256", "typ": "at+jwt", "kid": kid, **(header or {})}
        head = {k: v for k, v in head.items() if v is not ...}
        return self.remember(forge(head, self.claims(user, **claims), signer))

    def remember(self, token: str) -> str:
        """Count ``token`` among the secrets that must never appear in answers or logs."""
        self.secrets.add(token)
        signature = token.rsplit(".", 1)[-1]
        if len(signature) >= 16:
            self.secrets.add(signature)
        return token

    # -- clients --------------------------------------------------------------------------

    async def open(self, **kwargs: Any) -> RawSocket:
        """An Engine.IO session (not yet a Socket.IO connection), closed after the test."""
        socket = await RawSocket.open_session(self.url, **kwargs)
        self.sockets.append(socket)
        return socket

    async def connect(self, auth: Any, namespace: str = "/", **kwargs: Any) -> SioPacket:
        """Open a session and send CONNECT with ``auth``; the server's answer."""
        socket = await self.open(**kwargs)
        answer = await socket.connect(auth, namespace)
        assert answer is not None, "no answer to CONNECT"
        return answer

    async def refusal(self, auth: Any, namespace: str = "/", **kwargs: Any) -> dict[str, Any]:
        """The CONNECT_ERROR body (``{message, data: {code, message}}``) for ``auth``."""
        answer = await self.connect(auth, namespace, **kwargs)
        assert answer.type == CONNECT_ERROR, f"accepted, expected a refusal: {answer.raw!r:.200}"
        assert isinstance(answer.data, dict), answer.raw
        return answer.data

    async def client(self, user: str = "erin", **claims: Any) -> tuple[RawSocket, str]:
        """A connected client of ``user``; (socket, Socket.IO sid)."""
        socket = await self.open()
        answer = await socket.connect({"token": self.token(user, **claims)})
        assert answer is not None, "no answer to CONNECT"
        assert answer.type == CONNECT, f"refused: {answer.raw!r:.300}"
        return socket, str(answer.data["sid"])

    async def barrier(self, socket: RawSocket, sub: str) -> None:
        """Wait until everything the server sent ``socket`` so far has arrived: a marker sent
        now to the user's own room comes after it (Socket.IO keeps order per connection), so
        "not received before the marker" means "not sent"."""
        nonce = secrets.token_hex(8)
        await self.server.emit("marker", {"nonce": nonce}, room=f"user:{sub}")
        got = await socket.wait_event(
            "marker", where=lambda data: isinstance(data, dict) and data.get("nonce") == nonce
        )
        assert got is not None, f"the marker for {sub} never arrived"

    # -- state ------------------------------------------------------------------------------

    def accepted(self) -> int:
        """Connects accepted since the case began (audit ``auth.connect.accepted``)."""
        return len(self.logs.audit("auth.connect.accepted")) - self.accepted_at_start

    def room_names(self) -> frozenset[Any]:
        rooms = self.server.sio.manager.rooms.get("/", {})
        return frozenset(name for name, members in rooms.items() if members)

    def live_state(self) -> dict[str, Any]:
        gateway = self.server.gateway
        return {
            **gateway.connections.sizes(),
            "unauthenticated": gateway.unauthenticated_sessions,
            # closed sessions wait in this map for python-engineio's sweep; open ones count
            "engineio": sum(not s.closed for s in self.server.sio.eio.sockets.values()),
            "binary_buffers": len(self.server.sio._binary_packet),
        }

    async def start_sentinel(self) -> None:
        """Connect the client that must keep working whatever the test throws at the node."""
        socket = await RawSocket.open_session(self.url)
        token = self.token("bob", exp=int(self.clock()) + 86400)  # tokens.max_lifetime_s
        answer = await socket.connect({"token": token})
        assert answer is not None
        assert answer.type == CONNECT, answer.raw
        self.sentinel, self.sentinel_sid = socket, str(answer.data["sid"])
        self.baseline_rooms = self.room_names()
        self.requests_at_start = self.idp.total_requests
        self.accepted_at_start = len(self.logs.audit("auth.connect.accepted"))

    async def begin_case(self) -> None:
        """Start a case on a node shared by a module: nothing of the last case remains."""
        await self.force_clean()
        if self.server.login is not None:
            for session_id in self.sessions_to_drop:
                await self.server.login.store.delete(session_id)
        self.sessions_to_drop.clear()
        if (
            self.sentinel is None
            or self.sentinel.closed
            or self.server.gateway.connections.get(self.sentinel_sid) is None
        ):
            if self.sentinel is not None:
                await self.sentinel.close()
            await self.start_sentinel()
        assert self.sentinel is not None
        self.sentinel.received.clear()
        self.sentinel.frames.clear()
        self.logs.records.clear()
        self.recorder.statuses.clear()
        self.recorder.bodies.clear()
        self.recorder.closes.clear()
        self.requests_at_start = self.idp.total_requests
        self.accepted_at_start = 0

    async def force_clean(self) -> None:
        """Close every Engine.IO session but the sentinel's (whatever a case left open)."""
        await self.close_clients()
        keep = self.sentinel.eio_sid if self.sentinel is not None else None
        for eio_sid in [s for s in list(self.server.sio.eio.sockets) if s != keep]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.sio.eio.disconnect(eio_sid), 0.5)
        alive = self.server.gateway.connections.get(self.sentinel_sid) is not None
        await self.settle(SETTLE_TIMEOUT_S if alive else 0.05)  # (no sentinel: no steady state)

    async def close_clients(self) -> None:
        for socket in self.sockets:
            await socket.close()
        self.sockets.clear()

    async def settle(self, timeout_s: float = SETTLE_TIMEOUT_S) -> dict[str, Any]:
        """Close this test's clients and wait (bounded) until only the sentinel is left."""
        await self.close_clients()
        expected = {"connections": 1, "users": 1, "sessions": 1, "rooms": 2,
                    "unauthenticated": 0, "engineio": 1, "binary_buffers": 0}  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        state = self.live_state()
        while state != expected and loop.time() < deadline:
            await asyncio.sleep(0.01)
            state = self.live_state()
        return state

    # -- the health check -------------------------------------------------------------------

    async def assert_healthy(
        self, *, fetches: int = 0, also_secret: Iterable[str] = (), fresh_client: bool = True,
        settle_s: float = SETTLE_TIMEOUT_S,
    ) -> None:  # fmt: skip
        """Nothing but the attack's own target was affected (see the module docstring).

        :param fetches: provider requests this case may cause (key or discovery fetches).
        :param also_secret: more strings that must appear in no answer and no log.
        """
        assert self.sentinel is not None, "the sentinel was never connected"
        state = await self.settle(settle_s)
        assert self.server.gateway.connections.get(self.sentinel_sid) is not None, (
            "the sentinel was disconnected"
        )
        assert state["connections"] == 1, f"connections left behind: {state}"
        assert state == {
            "connections": 1,
            "users": 1,
            "sessions": 1,
            "rooms": 2,
            "unauthenticated": 0,
            "engineio": 1,
            "binary_buffers": 0,
        }, state
        assert self.room_names() == self.baseline_rooms, "Socket.IO rooms left behind"
        # a client connected before still receives a broadcast
        nonce = secrets.token_hex(8)
        await self.server.emit("memo", {"nonce": nonce}, room="tenant:acme")
        got = await self.sentinel.wait_event(
            "memo", where=lambda data: isinstance(data, dict) and data.get("nonce") == nonce
        )
        assert got is not None, "the sentinel stopped receiving broadcasts"
        assert not self.sentinel.closed
        # a new valid client connects (and leaves no trace)
        if fresh_client:
            socket, _ = await self.client("erin")
            await socket.close()
            self.sockets.remove(socket)
            state = await self.settle()
            assert state["connections"] == 1, f"the fresh client left state behind: {state}"
        self.assert_clean(fetches=fetches, also_secret=also_secret)

    def assert_clean(self, *, fetches: int = 0, also_secret: Iterable[str] = ()) -> None:
        """The passive half of the health check: answers, logs and provider requests."""
        # /readyz answers 503 by design while an issuer has no keys; nothing else may
        errors = [(path, status) for path, status in self.recorder.statuses
                  if status >= 500 and (path, status) != ("/readyz", 503)]  # fmt: skip
        assert not errors, f"5xx answered: {errors}"
        assert 1011 not in self.recorder.closes, "a WebSocket was closed with an internal error"
        texts = self.logs.texts()
        traces = [t for t in texts if "Traceback" in t or "Exception in ASGI" in t]
        assert not traces, f"a stack trace was logged: {traces[0][:2000]}"
        crashes = [t for t in texts if "never retrieved" in t or "exception was never" in t]
        assert not crashes, crashes[0][:2000]
        leaked = self.leaks(also_secret)
        assert not leaked, f"a secret was echoed: {leaked[0][:300]}"
        made = self.idp.total_requests - self.requests_at_start
        assert made <= fetches, f"{made} provider requests, {fetches} expected: {self.idp.requests}"

    def leaks(self, also_secret: Iterable[str] = ()) -> list[str]:
        watched = [s for s in (*self.secrets, *also_secret) if len(s) >= 12]
        places = [*self.logs.texts()]
        places += [body.decode("utf-8", "replace") for body in self.recorder.bodies]
        for socket in [*self.sockets, *([self.sentinel] if self.sentinel else [])]:
            places += [f if isinstance(f, str) else f.decode("latin-1") for f in socket.frames]
        return [place for place in places if any(secret in place for secret in watched)]


@contextlib.asynccontextmanager
async def running_node(
    settings: Settings | None = None,
    *,
    clock: FakeClock | None = None,
    idp: FakeIdp | None = None,
    key: SigningKey,
    http: httpx.AsyncClient | None = None,
    sentinel: bool = True,
    configure: Callable[[SsoServer], None] | None = None,
) -> AsyncIterator[Node]:
    """An ssoio node on 127.0.0.1 (uvicorn as ``ssoio serve`` runs it), keys loaded, the
    sentinel client connected (unless ``sentinel=False``)."""
    clock = clock or FakeClock()
    idp = idp or FakeIdp(issuer=ISSUER, keys=[key])
    logs = LogCapture()
    client = http or idp.client()
    try:
        # on the suite's transport path (SSOIO_TRANSPORT, tests/support/transport_path.py)
        server = SsoServer(on_path(settings or settings_from()), clock=clock, http=client)
        server.providers.sleep = clock.sleep  # key refreshes happen when the test moves time
        if configure is not None:
            configure(server)
        recorder = StatusRecorder(server.asgi_app)
        options = {**uvicorn_options(server), "timeout_graceful_shutdown": 1}
        async with serve_quickly(recorder, **options) as url:
            logs.install()  # after uvicorn configured its loggers (it replaces their handlers)
            node = Node(url, server, idp, clock, key, logs, recorder)
            await _keys_loaded(server)
            if sentinel:
                await node.start_sentinel()
            try:
                yield node
            finally:
                await node.close_clients()
                if node.sentinel is not None:
                    await node.sentinel.close()
    finally:
        logs.remove()
        await client.aclose()


async def _keys_loaded(server: SsoServer, timeout_s: float = 5.0) -> None:
    """Wait (bounded) for the background key warm-up, so later requests are the test's."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    issuers = server.settings.issuers
    while loop.time() < deadline:
        if all(server.providers.keys.status(i).fetches for i in issuers) and not any(
            server.providers.keys._states[i.issuer].inflight for i in issuers
        ):
            return
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def serve_quickly(app: ASGIApp, **overrides: Any) -> AsyncIterator[str]:
    """``tests.interop.asgi_server.serve_asgi`` without its fixed waits: uvicorn's main loop
    and shutdown poll every 100 ms, which adds up over a few hundred nodes. Same settings
    (127.0.0.1, an OS-chosen port, quiet logs); stopping closes connections, waits for them
    (bounded), then runs the lifespan shutdown."""
    config = quiet_config(app, overrides)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{bound_port(server)}"
    finally:
        for listener in server.servers:
            listener.close()
        state = server.server_state
        for connection in list(state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_TIMEOUT_S
        while (state.connections or state.tasks) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)  # uvicorn offers no event for "connections closed"
        for task in list(state.tasks):
            task.cancel()
        await server.lifespan.shutdown()
