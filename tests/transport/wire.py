"""What the conformance tests share: the node the suites expect, raw clients, and the
``NonConformance`` failure that known deviations are allowed to raise.

The official suites (Engine.IO v4: ``socketio/engine.io-protocol``, Socket.IO v5:
``socketio/socket.io-protocol``, folder ``test-suite/``) run mocha against a server on
localhost:3000 with pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6, an echo
handler, and for Socket.IO the namespaces ``/`` and ``/custom``, an ``auth`` echo on
connect and ``message`` / ``message-with-ack`` echoes. ssoio expresses that server as:

* ``realtime.ping_interval_s = 0.3`` and ``ping_timeout_s = 0.2`` (the validation bounds
  in ``ssoio/config/server.py`` are only ``> 0``);
* maxPayload is python-engineio's ``max_http_buffer_size``, which ssoio derives as
  ``4 * realtime.max_payload_bytes + 1024`` (``transport/server.py``): 249,744 gives 1e6;
* ``policy.namespaces`` = ``/`` and ``/custom``, both ``authenticated``;
* everything else is ``config/ssoio.example.toml`` with the harness's generous rate limits
  (``tests.security.harness.settings_from``: the fake clock never refills a bucket), served
  by uvicorn with ``ssoio.serving.uvicorn_options`` (``running_node``);
* the echoes as embedded handlers (``SsoServer.on``): ``message {text}`` emits
  ``message-back`` with the same payload to the sender's own room (``user:{sub}``; every
  test connection has a sub of its own, so that is the sender alone), and
  ``message-with-ack {text}`` answers ``{"ok": true, "text": ...}`` (ssoio's acks are
  always ``{ok, ...}``). ssoio has no connect hook for applications and never hands the
  CONNECT payload (the credential) to one: the ``auth`` echo cannot be expressed.

ssoio serves Engine.IO only as the transport of Socket.IO, at ``/socket.io/``: the Engine.IO
suite's ``/engine.io/`` cases run there, and its "echo" (the server answers a message with
a message) is a Socket.IO event with an ack on an authenticated connection
(``message-with-ack``). Every Socket.IO CONNECT carries a valid token
(``{"token": ...}``; ssoio refuses a CONNECT without a credential).

Upstream expectations are checked with ``conform``/``conform_equal``, which raise
``NonConformance``; a case ssoio fails today is marked ``deviates(kind, reason)``
(``xfail(strict=True, raises=NonConformance)``), so it fails the run if it starts passing,
or if it fails any other way (a timeout, a broken setup, a plain ``assert``). Where a known
deviation would hide later expectations of the same case, it is checked last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ssoio.app import SsoServer
from ssoio.config import Settings
from ssoio.policy.principal import Principal
from tests.security.harness import Node, settings_from
from tests.support.polling import eventually

__all__ = [
    "DELIBERATE",
    "HEARTBEAT_S",
    "MAX_PAYLOAD",
    "PING_INTERVAL_MS",
    "PING_TIMEOUT_MS",
    "QUIET_S",
    "RECORD_SEPARATOR",
    "SSOIO_BUG",
    "UPSTREAM",
    "WAIT_S",
    "NonConformance",
    "Peer",
    "Polling",
    "Wire",
    "conform",
    "conform_equal",
    "conformance_settings",
    "deviates",
    "engine_session",
    "install_echo_handlers",
    "wait_until",
]

PING_INTERVAL_MS: Final = 300
PING_TIMEOUT_MS: Final = 200
MAX_PAYLOAD: Final = 1_000_000
# Bounds: WAIT_S for what must happen (generous: a loaded 2-core CI machine), QUIET_S for
# "nothing arrives" (only in cases that deviate), HEARTBEAT_S for a ping cycle.
WAIT_S: Final = 3.0
QUIET_S: Final = 1.0
HEARTBEAT_S: Final = (PING_INTERVAL_MS + PING_TIMEOUT_MS) / 1000
RECORD_SEPARATOR: Final = "\x1e"  # Engine.IO v4 long-polling payloads

SSOIO_BUG: Final = "ssoio bug, fixable in ssoio-owned code"
UPSTREAM: Final = "python-engineio/python-socketio behaviour ssoio does not own"
DELIBERATE: Final = "deliberate ssoio deviation"


class NonConformance(AssertionError):
    """An expectation of the upstream suite that ssoio does not meet."""


def conform(ok: bool, upstream: str, got: object) -> None:
    """Raise ``NonConformance`` unless ``ok`` (``upstream`` says what the suite expects)."""
    if not ok:
        raise NonConformance(f"expected {upstream}; ssoio gave {got!r:.400}")


def conform_equal(got: object, expected: object) -> None:
    conform(got == expected, repr(expected), got)


def deviates(kind: str, reason: str) -> pytest.MarkDecorator:
    """A case ssoio fails today, for ``reason`` (``kind``: SSOIO_BUG, UPSTREAM, DELIBERATE)."""
    return pytest.mark.xfail(strict=True, raises=NonConformance, reason=f"{kind}: {reason}")


def conformance_settings() -> Settings:
    """The example configuration, shaped as the suites expect their server (see above)."""
    return settings_from(
        realtime={
            "ping_interval_s": PING_INTERVAL_MS / 1000,
            "ping_timeout_s": PING_TIMEOUT_MS / 1000,
            "max_payload_bytes": (MAX_PAYLOAD - 1024) // 4,
        },
        policy={"namespaces": {"/": "authenticated", "/custom": "authenticated"}},
    )


def install_echo_handlers(server: SsoServer) -> None:
    """The suites' ``message`` and ``message-with-ack`` echoes, as ssoio embeds handlers."""

    @server.on("message", requires="authenticated", fields={"text": "string"})
    async def message(principal: Principal, payload: dict[str, Any]) -> None:
        await server.emit("message-back", payload, room=f"user:{principal.subject}")

    @server.on("message-with-ack", requires="authenticated", fields={"text": "string"})
    async def message_with_ack(principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
        return payload


async def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    """Whether ``condition`` came true within the bound (checked every 10 ms)."""
    return await eventually(condition, timeout_s)


def engine_session(node: Node, sid: str) -> Any:
    """The node's Engine.IO session ``sid`` (python-engineio's socket object), or None.
    Read only to wait for a state the suites race against (upgraded, closed)."""
    return node.server.sio.eio.sockets.get(sid)


@dataclass
class Wire:
    """One WebSocket seen frame by frame (the suites' ``new WebSocket(...)``)."""

    ws: ClientConnection
    closed: bool = False

    @classmethod
    async def open(cls, base_url: str, query: str) -> Wire:
        """Open ``/socket.io/?query``. :raises InvalidStatus: the handshake was refused."""
        url = base_url.replace("http://", "ws://", 1) + "/socket.io/?" + query
        ws = await connect(
            url, compression=None, open_timeout=WAIT_S, ping_interval=None, max_size=None,
            close_timeout=1, proxy=None,
        )  # fmt: skip
        return cls(ws)

    async def send(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def frame(self, timeout_s: float = WAIT_S) -> str | bytes | None:
        """The next frame, pings included (the suites' ``waitFor(socket, "message")``);
        None when nothing came within the bound or the server closed the connection."""
        if self.closed:
            return None
        try:
            return await asyncio.wait_for(self.ws.recv(), timeout_s)
        except TimeoutError:
            return None
        except ConnectionClosed:
            self.closed = True
            return None

    async def message(self, timeout_s: float = WAIT_S) -> str | bytes | None:
        """The next frame that is not a ping (pings are answered, so the session lives)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (left := deadline - loop.time()) > 0:
            frame = await self.frame(left)
            if frame != "2":
                return frame
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send("3")
        return None

    async def closed_within(self, timeout_s: float = WAIT_S, *, answer_pings: bool = True) -> bool:
        """True once the server has closed the connection (the suites' ``waitFor(socket,
        "close")``), reading and discarding frames meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.closed and (left := deadline - loop.time()) > 0:
            frame = await self.frame(left)
            if frame == "2" and answer_pings:
                with contextlib.suppress(ConnectionClosed):
                    await self.ws.send("3")
        return self.closed

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.closed = True


@dataclass
class Polling:
    """Engine.IO long-polling over httpx, request by request (the suites' ``fetch``)."""

    http: httpx.AsyncClient
    base_url: str
    sid: str = ""

    @property
    def url(self) -> str:
        return f"{self.base_url}/socket.io/?EIO=4&transport=polling&sid={self.sid}"

    async def handshake(self) -> dict[str, Any]:
        """Open a session (the suites' ``initLongPollingSession``); its OPEN packet."""
        response = await self.http.get(f"{self.base_url}/socket.io/?EIO=4&transport=polling")
        assert response.status_code == 200, response.text[:200]
        assert response.text.startswith("0"), response.text[:200]
        opened: dict[str, Any] = json.loads(response.text[1:])
        self.sid = str(opened["sid"])
        return opened

    async def get(self, extra: str = "", timeout_s: float = WAIT_S) -> httpx.Response:
        return await self.http.get(self.url + extra, timeout=timeout_s)

    async def post(self, body: str, timeout_s: float = WAIT_S) -> httpx.Response:
        return await self.http.post(self.url, content=body.encode(), timeout=timeout_s)

    async def messages(self, count: int, timeout_s: float = WAIT_S) -> list[str]:
        """Poll until ``count`` packets other than pings arrived (pings are answered)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        got: list[str] = []
        while len(got) < count and (left := deadline - loop.time()) > 0:
            try:
                response = await self.get(timeout_s=left)
            except httpx.TimeoutException:
                break  # nothing more within the bound
            assert response.status_code == 200, (response.status_code, response.text[:200])
            for frame in response.text.split(RECORD_SEPARATOR):
                if frame == "2":
                    await self.post("3")
                else:
                    got.append(frame)
        return got


@dataclass
class Peer:
    """The clients of one test against the module's node; everything is closed after it."""

    node: Node
    http: httpx.AsyncClient
    wires: list[Wire] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.node.url

    async def ws(self, query: str = "EIO=4&transport=websocket") -> Wire:
        """A WebSocket at ``/socket.io/?query`` (no frame read yet)."""
        wire = await Wire.open(self.url, query)
        self.wires.append(wire)
        return wire

    async def session(self) -> tuple[Wire, dict[str, Any]]:
        """A WebSocket Engine.IO session and its OPEN packet."""
        wire = await self.ws()
        first = await wire.frame()
        assert isinstance(first, str), first
        assert first.startswith("0"), first
        return wire, json.loads(first[1:])

    def polling(self) -> Polling:
        return Polling(self.http, self.url)

    def token(self) -> str:
        """A valid access token of a subject no other connection has."""
        return self.node.token("erin", sub=f"conformance-{secrets.token_hex(6)}")

    def connect_frame(self, namespace: str = "/", auth: Mapping[str, Any] | None = None) -> str:
        """A Socket.IO CONNECT (in an Engine.IO message) with a valid token."""
        prefix = "" if namespace == "/" else f"{namespace},"
        return f"40{prefix}{json.dumps({**(auth or {}), 'token': self.token()})}"

    async def connect(self, wire: Wire, namespace: str = "/") -> str:
        """CONNECT ``wire`` to ``namespace`` with a valid token; the Socket.IO sid."""
        prefix = "" if namespace == "/" else f"{namespace},"
        await wire.send(self.connect_frame(namespace))
        answer = await wire.message()
        assert isinstance(answer, str), answer
        assert answer.startswith(f"40{prefix}"), answer
        return str(json.loads(answer[2 + len(prefix) :])["sid"])

    async def connect_polling(self, polling: Polling) -> str:
        """CONNECT a long-polling session to ``/`` with a valid token; the Socket.IO sid."""
        pushed = await polling.post(self.connect_frame())
        assert pushed.status_code == 200, (pushed.status_code, pushed.text[:200])
        answer = await polling.messages(1)
        assert answer, "no answer to CONNECT"
        assert answer[0].startswith("40{"), answer
        return str(json.loads(answer[0][2:])["sid"])

    async def connected(self) -> Wire:
        """The suite's ``initSocketIOConnection``: a session connected to ``/``, without
        the ``auth`` echo (ssoio sends none)."""
        wire, _ = await self.session()
        await self.connect(wire)
        return wire

    async def close(self) -> None:
        for wire in self.wires:
            await wire.close()
        self.wires.clear()
