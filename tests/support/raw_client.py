"""A raw Engine.IO v4 / Socket.IO v5 client that can send what well-behaved clients never do.

Well-behaved clients (python-socketio's, the official JavaScript one) refuse to send an
event named ``connect``, a CONNECT to a namespace twice, binary events announcing a
million attachments, or a frame that is not a packet at all. Hostile clients do exactly
that, so the security tests speak the protocol by hand:

* Engine.IO v4 (WebSocket): the server opens with ``0{"sid":...}``; ``2`` is a ping
  (answered ``3`` by ``recv``), ``4`` prefixes every Socket.IO packet, ``1`` closes.
* Socket.IO v5 packets: ``<type>[<attachments>-][/<namespace>,][<ack id>][<json>]`` with
  types 0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT,
  6 BINARY_ACK. So ``40{"token":"..."}`` is a CONNECT with auth, ``42 7["name",{...}]``
  (without the space) an event asking for ack 7, ``43 7[...]`` its ack.

Every receive is bounded in time; nothing here waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.protocol import State

__all__ = [
    "ACK",
    "BINARY_EVENT",
    "CONNECT",
    "CONNECT_ERROR",
    "DISCONNECT",
    "EVENT",
    "PollingSession",
    "RawSocket",
    "SioPacket",
    "SocketClosedError",
    "encode_event",
    "handshake_status",
    "parse_packet",
]

CONNECT: Final = 0
DISCONNECT: Final = 1
EVENT: Final = 2
ACK: Final = 3
CONNECT_ERROR: Final = 4
BINARY_EVENT: Final = 5

DEFAULT_TIMEOUT_S: Final = 3.0
_SIO_HEADER = re.compile(r"(?P<type>\d)(?:(?P<att>\d+)-)?(?:(?P<ns>/[^,]*),)?(?P<id>\d+)?")
_RECORD_SEPARATOR: Final = "\x1e"


@dataclass(frozen=True)
class SioPacket:
    """One decoded Socket.IO packet (from an Engine.IO ``4`` message)."""

    type: int
    namespace: str
    id: int | None
    data: Any
    raw: str

    @property
    def event(self) -> str | None:
        if self.type == EVENT and isinstance(self.data, list) and self.data:
            name = self.data[0]
            return name if isinstance(name, str) else None
        return None


def parse_packet(message: str) -> SioPacket | None:
    """Decode an Engine.IO message frame (``4...``) into a Socket.IO packet, else None."""
    if not message.startswith("4") or len(message) < 2:
        return None
    body = message[1:]
    header = _SIO_HEADER.match(body)
    if header is None:
        return None
    rest = body[header.end() :]
    data: Any = None
    if rest:
        try:
            data = json.loads(rest)
        except ValueError:
            data = rest
    ack = header.group("id")
    return SioPacket(
        type=int(header.group("type")),
        namespace=header.group("ns") or "/",
        id=int(ack) if ack is not None else None,
        data=data,
        raw=message,
    )


def encode_event(
    name: Any, *args: Any, ack: int | None = None, namespace: str = "/", kind: int = EVENT
) -> str:
    """An Engine.IO message carrying a Socket.IO EVENT (any ``name``, even a reserved one)."""
    prefix = "" if namespace == "/" else f"{namespace},"
    ack_id = "" if ack is None else str(ack)
    return f"4{kind}{prefix}{ack_id}{json.dumps([name, *args])}"


class SocketClosedError(Exception):
    """The server closed the WebSocket."""


@dataclass
class RawSocket:
    """One Engine.IO session over a WebSocket; see the module docstring for the framing."""

    ws: ClientConnection
    open: dict[str, Any]
    received: list[SioPacket] = field(default_factory=list)
    frames: list[str | bytes] = field(default_factory=list)
    closed: bool = False
    ended: bool = False  # the server sent an Engine.IO CLOSE ("1"): nothing more will come
    _next_ack: int = 100  # hand-made frames in tests use small ack ids

    @classmethod
    async def open_session(
        cls,
        base_url: str,
        *,
        query: str = "EIO=4&transport=websocket",
        headers: Mapping[str, str] | None = None,
        origin: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> RawSocket:
        """Open a WebSocket at ``/socket.io/?query`` and read the Engine.IO OPEN packet.

        :raises InvalidStatus: the handshake was refused (``.response.status_code``).
        """
        url = base_url.replace("http://", "ws://", 1) + "/socket.io/?" + query
        ws = await connect(
            url, origin=origin, additional_headers=dict(headers or {}),  # type: ignore[arg-type]
            compression=None, open_timeout=timeout_s, ping_interval=None,
            max_size=None, close_timeout=1, proxy=None,
        )  # fmt: skip
        first = await asyncio.wait_for(ws.recv(), timeout_s)
        if not isinstance(first, str) or not first.startswith("0"):
            await ws.close()
            raise AssertionError(f"expected an Engine.IO OPEN packet, got {first!r:.200}")
        return cls(ws, json.loads(first[1:]))

    @property
    def is_open(self) -> bool:
        """The WebSocket is open and the server has not ended the session."""
        return not self.closed and not self.ended and self.ws.state is State.OPEN

    @property
    def eio_sid(self) -> str:
        return str(self.open["sid"])

    async def send(self, frame: str | bytes) -> None:
        """Send one raw WebSocket frame (text or binary), exactly as given.

        :raises SocketClosedError: the connection is closed.
        """
        try:
            await self.ws.send(frame)
        except ConnectionClosed as exc:
            self.closed = True
            raise SocketClosedError(str(exc)) from None

    async def recv(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> str | bytes | None:
        """The next frame that is not a ping (pings are answered); None on timeout.

        :raises SocketClosedError: the server closed the connection.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                frame = await asyncio.wait_for(self.ws.recv(), left)
            except TimeoutError:
                return None
            except ConnectionClosed as exc:
                self.closed = True
                raise SocketClosedError(str(exc)) from None
            if frame == "2":
                await self.ws.send("3")
                continue
            self.frames.append(frame)
            if frame == "1":
                self.ended = True
            if isinstance(frame, str):
                packet = parse_packet(frame)
                if packet is not None:
                    self.received.append(packet)
            return frame

    async def expect(
        self, wanted: Callable[[SioPacket], bool], timeout_s: float = DEFAULT_TIMEOUT_S,
        since: int = 0,
    ) -> SioPacket | None:  # fmt: skip
        """The first packet ``wanted`` accepts, among those received from index ``since``
        on and those arriving within the bound."""
        for packet in self.received[since:]:
            if wanted(packet):
                return packet
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (left := deadline - loop.time()) > 0 and not self.ended:
            try:
                frame = await self.recv(left)
            except SocketClosedError:
                return None
            if frame is None:
                return None
            arrived = parse_packet(frame) if isinstance(frame, str) else None
            if arrived is not None and wanted(arrived):
                return arrived
        return None

    async def connect(
        self, auth: Any = None, namespace: str = "/", *, raw_auth: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> SioPacket | None:  # fmt: skip
        """Send CONNECT (with ``auth`` as JSON, or ``raw_auth`` verbatim); the CONNECT or
        CONNECT_ERROR answer for that namespace, or None."""
        prefix = "" if namespace == "/" else f"{namespace},"
        body = raw_auth if raw_auth is not None else ("" if auth is None else json.dumps(auth))
        since = len(self.received)  # answers to earlier CONNECTs are not answers to this one
        await self.send(f"40{prefix}{body}")
        return await self.expect(
            lambda p: p.type in (CONNECT, CONNECT_ERROR) and p.namespace == namespace,
            timeout_s, since,
        )  # fmt: skip

    async def emit(self, name: Any, *args: Any, ack: bool = True, namespace: str = "/") -> int:
        """Send an event (any name, any arguments); returns its ack id (0 when none)."""
        ack_id = self._next_ack if ack else None
        self._next_ack += 1
        await self.send(encode_event(name, *args, ack=ack_id, namespace=namespace))
        return ack_id or 0

    async def ack_for(
        self, ack_id: int, timeout_s: float = DEFAULT_TIMEOUT_S, namespace: str = "/"
    ) -> Any:
        """The first argument of the ACK for ``ack_id``; None when none came in time."""
        packet = await self.expect(
            lambda p: p.type == ACK and p.id == ack_id and p.namespace == namespace, timeout_s
        )
        if packet is None or not isinstance(packet.data, list) or not packet.data:
            return None
        return packet.data[0]

    async def call(self, name: Any, *args: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        """Emit with an ack and wait (bounded) for the answer."""
        return await self.ack_for(await self.emit(name, *args), timeout_s)

    def events(self, name: str) -> list[Any]:
        """Payloads of every received event called ``name``."""
        return [p.data[1] if len(p.data) > 1 else None for p in self.received if p.event == name]

    async def wait_event(
        self, name: str, timeout_s: float = DEFAULT_TIMEOUT_S,
        where: Callable[[Any], bool] = lambda _: True,
    ) -> Any:  # fmt: skip
        """The payload of an event ``name`` (matching ``where``), or None after the bound."""
        packet = await self.expect(
            lambda p: p.event == name and where(p.data[1] if len(p.data) > 1 else None),
            timeout_s,
        )
        if packet is None:
            return None
        return packet.data[1] if len(packet.data) > 1 else None

    async def wait_closed(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
        """True once the server has closed the connection (within the bound)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.closed and (left := deadline - loop.time()) > 0:
            with contextlib.suppress(SocketClosedError):
                await self.recv(left)
        return self.closed

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.closed = True


async def upgrade_websocket(base_url: str, sid: str) -> ClientConnection:
    """A WebSocket to the long-polling Engine.IO session ``sid`` (Engine.IO v4 "Upgrade"),
    the probe and upgrade packets left to the caller."""
    url = base_url.replace("http://", "ws://", 1)
    return await connect(
        f"{url}/socket.io/?EIO=4&transport=websocket&sid={sid}",
        compression=None, ping_interval=None, close_timeout=1, proxy=None,
    )  # fmt: skip


async def handshake_status(
    base_url: str,
    *,
    query: str = "EIO=4&transport=websocket",
    headers: Mapping[str, str] | None = None,
    origin: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> int:
    """Try a WebSocket handshake: 101 when it was accepted (then closed), else the status.

    A server that accepts the upgrade and closes at once counts as refused (``-1``).
    """
    try:
        socket = await RawSocket.open_session(
            base_url, query=query, headers=headers, origin=origin, timeout_s=timeout_s
        )
    except InvalidStatus as refused:
        return int(refused.response.status_code)
    except (ConnectionClosed, OSError):
        return -1
    await socket.close()
    return 101


@dataclass
class PollingSession:
    """An Engine.IO v4 long-polling session over httpx (``transport=polling``)."""

    http: httpx.AsyncClient
    base_url: str
    sid: str
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    async def handshake(
        http: httpx.AsyncClient,
        base_url: str,
        query: str = "EIO=4&transport=polling",
        headers: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> httpx.Response:
        """The raw answer to a polling handshake (no session object: it may be refused)."""
        return await http.get(
            f"{base_url}/socket.io/?{query}", headers=dict(headers or {}), timeout=timeout_s
        )

    @classmethod
    async def open(
        cls, http: httpx.AsyncClient, base_url: str, headers: Mapping[str, str] | None = None
    ) -> PollingSession:
        response = await cls.handshake(http, base_url, headers=headers)
        assert response.status_code == 200, response.text[:200]
        assert response.text.startswith("0"), response.text[:200]
        sid = json.loads(response.text[1:])["sid"]
        return cls(http, base_url, sid, dict(headers or {}))

    @property
    def url(self) -> str:
        return f"{self.base_url}/socket.io/?EIO=4&transport=polling&sid={self.sid}"

    async def post(self, *frames: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> httpx.Response:
        body = _RECORD_SEPARATOR.join(frames)
        return await self.http.post(
            self.url, content=body.encode(), headers=self.headers, timeout=timeout_s
        )

    async def close(self) -> None:
        """End the session the way a client does: an Engine.IO CLOSE packet."""
        with contextlib.suppress(httpx.HTTPError):
            await self.post("1")

    async def get(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[int, list[str]]:
        """One poll: (status, frames). Pings are answered with a POST of ``3``."""
        response = await self.http.get(self.url, headers=self.headers, timeout=timeout_s)
        frames = response.text.split(_RECORD_SEPARATOR) if response.status_code == 200 else []
        if "2" in frames:
            await self.post("3")
            frames = [f for f in frames if f != "2"]
        return response.status_code, frames
