"""A lean Socket.IO load generator speaking the protocol over a plain websocket.

No Socket.IO client library: each connection is a ``websockets`` client on
``/socket.io/?EIO=4&transport=websocket`` (no long-polling, no upgrade). It reads the
Engine.IO open packet ``0{...}``, sends ``40{"token": ...}`` (Socket.IO CONNECT with
auth) and waits for ``40{"sid": ...}``; ``44{...}`` (CONNECT_ERROR) counts as a failure.
Pings (``2``) are answered (``3``); events are ``42<id>["echo",{"n":i}]`` and their acks
``43<id>[...]``. Every packet and every token is encoded before a phase starts.

The client offers permessage-deflate, as browsers and the official clients do; the server
decides whether to accept it (``--no-deflate`` stops offering it). Websocket-level pings
are off: Socket.IO has its own heartbeat.

One phase per run, against one server process whose id is given: the generator reads
that process's CPU time (utime + stime from ``/proc/PID/stat``) and RSS
(``/proc/PID/status``) at the phase's boundaries, and how busy other processes kept the
server's core meanwhile (``/proc/stat``), and prints one JSON object:

* ``storm``: ``--count`` connects at ``--concurrency``, each with its own token; the
  connections stay open until the phase ends. Latency: from opening the TCP connection
  (the websocket handshake) to receiving the Socket.IO CONNECT packet. The teardown that
  follows (every client closes) is measured apart: server CPU per disconnect.
* ``events``: ``--clients`` connections (opened before the phase) each send ``--events``
  acked events, the next only after the previous ack. Latency: send to ack.
* ``idle``: RSS before and after ``--count`` connections are opened and left idle for
  ``--settle`` seconds.
* ``relay``: ``--clients`` connections each join a room of their own (``room:join``) and
  send ``--events`` acked ``chat:send {room, text, note}``, the next after the previous
  ack; the server relays each as ``chat:message`` to the room (here: the sender only).
* ``relay10``: the same with rooms of 10 members (same tenant): one sender, 8 staff
  members and 1 member without role staff, each reading its ``chat:message`` frames; the
  measured span ends when every member has every message. ``--visibility`` makes a
  ``note`` seen by the non-staff member (or missed by a staff one) a failure.

With ``--signal-profile`` the server gets SIGUSR1 just before the measured part of the
phase and SIGUSR2 just after it (``servers/ssoio_node.py --profile`` profiles in between).

Each phase first warms the server up (connects and events, then closed) so lazy
imports and first-use caches are not measured.

Run (``benchmarks/realtime.py`` does): ``.venv/bin/python benchmarks/loadgen.py PHASE --port N
--server-pid PID --key FILE --issuer URL``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

AUDIENCE = "bench-api"
KID = "bench-1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WARMUP_CONNECTS = 20
WARMUP_EVENTS = 20
TENANTS = ("acme", "globex")
ROOM_SIZE = 10  # the relay10 phase's rooms: the sender, 8 staff and 1 non-staff recipient
NOTE = "staff only"


# -- tokens ---------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    """An RS256 JWT of ``claims`` with the benchmark issuer's key (``typ: at+jwt``)."""
    header = b64(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": KID}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def tenant_of(i: int) -> str:
    return TENANTS[i % 2]


def make_tokens(
    key: rsa.RSAPrivateKey, issuer: str, count: int, prefix: str,
    group: int = 1, staff: Callable[[int], bool] = lambda _i: True,
) -> list[str]:  # fmt: skip
    """``count`` distinct RS256 access tokens (RFC 9068 shaped, Keycloak-style claims):
    consecutive ``group``s of them share a tenant; ``staff(i)`` says who has role staff."""
    now = int(time.time())
    tokens = []
    for i in range(count):
        claims = {
            "iss": issuer, "sub": f"{prefix}-user-{i}", "aud": AUDIENCE, "exp": now + 3600,
            "iat": now, "jti": f"{prefix}-{i}-{os.urandom(6).hex()}", "client_id": "bench-web",
            "scope": "openid chat", "realm_access": {"roles": ["staff"] if staff(i) else []},
            "tenant": tenant_of(i // group),
        }  # fmt: skip
        tokens.append(sign(key, claims))
    return tokens


def connect_packets(tokens: Sequence[str]) -> list[str]:
    return ["40" + json.dumps({"token": token}, separators=(",", ":")) for token in tokens]


# -- the server process -----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def core_busy_seconds(core: int) -> float:
    """Busy time of CPU ``core`` (every process), from ``/proc/stat``."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(v) for v in line.split()[1:]]
            idle = ticks[3] + ticks[4]  # idle, iowait
            return (sum(ticks[:8]) - idle) / CLOCK_TICKS
    return 0.0


@dataclass(frozen=True)
class Snapshot:
    server_cpu: float
    own_cpu: float
    core_busy: float
    wall: float


@dataclass(frozen=True)
class Span:
    """What one measured span cost: wall time, server CPU, load generator CPU, and the
    share of the server's core that other processes used meanwhile (0 on a quiet host)."""

    wall: float
    server_cpu: float
    client_cpu: float
    other_load: float


# -- the protocol -----------------------------------------------------------------------------


class ConnectRefused(Exception):
    """The server answered the Socket.IO CONNECT with CONNECT_ERROR (``44``)."""


@dataclass(slots=True)
class Client:
    url: str
    deflate: bool

    async def open(self, connect_packet: str) -> ClientConnection:
        """Websocket handshake, Engine.IO open, Socket.IO CONNECT; return the socket."""
        ws = await connect(
            self.url, compression="deflate" if self.deflate else None, ping_interval=None,
            proxy=None, open_timeout=30, close_timeout=2, user_agent_header=None,
        )  # fmt: skip
        try:
            opened = await ws.recv()
            if not isinstance(opened, str) or not opened.startswith("0{"):
                raise ConnectRefused(f"not an Engine.IO open packet: {opened[:80]!r}")
            await ws.send(connect_packet)
            while True:
                message = await ws.recv()
                if message == "2":
                    await ws.send("3")
                elif isinstance(message, str) and message.startswith("40"):
                    return ws
                elif isinstance(message, str) and message.startswith("44"):
                    raise ConnectRefused(message[:300])
        except BaseException:
            await ws.close()
            raise


async def keep_alive(ws: ClientConnection) -> None:
    """Answer Engine.IO pings until the socket closes."""
    try:
        async for message in ws:
            if message == "2":
                await ws.send("3")
    except ConnectionClosed:
        pass


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, error: BaseException | str) -> None:
        self.failures += 1
        if len(self.errors) < 5:
            text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            self.errors.append(text[:300])


class Sockets:
    """Open connections and their ping-answering tasks."""

    def __init__(self) -> None:
        self.open: list[ClientConnection] = []
        self.tasks: list[asyncio.Task[None]] = []

    def deflate(self) -> bool | None:
        """Whether the server accepted permessage-deflate (None: no connection)."""
        if not self.open:
            return None
        return any(e.name == "permessage-deflate" for e in self.open[0].protocol.extensions)

    def keep(self, ws: ClientConnection) -> None:
        self.open.append(ws)
        self.tasks.append(asyncio.create_task(keep_alive(ws)))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for start in range(0, len(self.open), 200):
            batch = self.open[start : start + 200]
            await asyncio.gather(*(ws.close() for ws in batch), return_exceptions=True)
        self.open.clear()
        self.tasks.clear()


async def open_many(
    client: Client,
    packets: Sequence[str],
    concurrency: int,
    on_open: Callable[[ClientConnection], None],
    tally: Tally,
) -> None:
    """Open one connection per CONNECT packet, ``concurrency`` at a time."""
    next_index = iter(range(len(packets)))

    async def worker() -> None:
        for i in next_index:
            started = time.perf_counter()
            try:
                ws = await client.open(packets[i])
            except (ConnectRefused, ConnectionClosed, OSError, TimeoutError) as exc:
                tally.fail(exc)
                continue
            tally.latencies.append(time.perf_counter() - started)
            on_open(ws)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(packets)))))


def event_packets(count: int) -> tuple[list[str], list[str]]:
    """Pre-encoded EVENT packets ``42<i>["echo",{"n":i}]`` and their ACK prefixes."""
    sends = [f'42{i}["echo",{{"n":{i}}}]' for i in range(count)]
    acks = [f"43{i}[" for i in range(count)]
    return sends, acks


def relay_packets(room: str, count: int) -> list[str]:
    """Pre-encoded ``42<i>["chat:send",{"room":...,"text":...,"note":...}]`` packets."""
    return [
        f"42{i}" + json.dumps(["chat:send", {"room": room, "text": f"hello {i}", "note": NOTE}],
                              separators=(",", ":"))
        for i in range(count)
    ]  # fmt: skip


async def join_room(ws: ClientConnection, room: str) -> None:
    """``room:join {room}``, acked ``{"ok": true}`` (else SystemExit: the server lacks the
    benchmark's relay set-up)."""
    await ws.send("429" + json.dumps(["room:join", {"room": room}], separators=(",", ":")))
    while True:
        message = await ws.recv()
        if message == "2":
            await ws.send("3")
        elif isinstance(message, str) and message.startswith("439["):
            if '"ok":true' not in message:
                raise SystemExit(f"room:join {room} refused: {message[:200]}")
            return


@dataclass
class Listener:
    """A room member that only reads: counts the ``chat:message`` frames it receives and
    whether it saw the staff-only ``note`` (``staff``: whether it should)."""

    ws: ClientConnection
    staff: bool
    expected: int
    received: int = 0
    wrong_view: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        try:
            async for message in self.ws:
                if message == "2":
                    await self.ws.send("3")
                elif isinstance(message, str) and message.startswith('42["chat:message"'):
                    self.received += 1
                    if ('"note"' in message) != self.staff:
                        self.wrong_view += 1
                    if self.received >= self.expected:
                        self.done.set()
        except ConnectionClosed:
            pass


async def send_events(
    ws: ClientConnection, sends: Sequence[str], acks: Sequence[str], tally: Tally
) -> None:
    """Send each event after the previous one's ack; record ack latencies."""
    latencies = tally.latencies
    for packet, ack in zip(sends, acks, strict=True):
        started = time.perf_counter()
        await ws.send(packet)
        while True:
            message = await ws.recv()
            if isinstance(message, str) and message.startswith(ack):
                break
            if message == "2":
                await ws.send("3")
        latencies.append(time.perf_counter() - started)
        if '"ok":true' not in message:
            tally.fail(f"refused: {message[:200]}")


# -- phases -----------------------------------------------------------------------------------


@dataclass
class Result:
    phase: str
    ops: int
    failures: int
    errors: list[str]
    wall_s: float
    server_cpu_s: float
    client_cpu_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    connections: int = 0
    rss_before_kib: int | None = None
    rss_after_kib: int | None = None
    deflate: bool | None = None
    other_load: float = 0.0
    disconnect_cpu_s: float | None = None
    deliveries: int | None = None  # relay phases: chat:message frames the members received
    wrong_views: int | None = None  # relay phases: frames with(out) the note against policy


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] * 1000


class Phase:
    """What every phase shares: the target, the tokens and the clock of the server."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = Client(
            f"ws://127.0.0.1:{args.port}/socket.io/?EIO=4&transport=websocket", args.deflate
        )
        pem = Path(args.key).read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SystemExit("--key must be an RSA private key")
        self.key = key
        self.pid: int = args.server_pid
        self.timeout: float = args.timeout
        self.signal_profile: bool = args.signal_profile
        self.core: int = args.server_core

    def snapshot(self) -> Snapshot:
        return Snapshot(
            cpu_seconds(self.pid), own_cpu_seconds(), core_busy_seconds(self.core),
            time.perf_counter(),
        )  # fmt: skip

    def span(self, since: Snapshot) -> Span:
        now = self.snapshot()
        wall, server_cpu = now.wall - since.wall, now.server_cpu - since.server_cpu
        other = max(0.0, now.core_busy - since.core_busy - server_cpu)
        return Span(wall, server_cpu, now.own_cpu - since.own_cpu, other / wall if wall else 0.0)

    def measure(self) -> Snapshot:
        """Start the measured part of a phase."""
        if self.signal_profile:
            os.kill(self.pid, signal.SIGUSR1)
        return self.snapshot()

    def measured(self, since: Snapshot) -> Span:
        """End the measured part of a phase."""
        span = self.span(since)
        if self.signal_profile:
            os.kill(self.pid, signal.SIGUSR2)
        return span

    async def server_quiet(self, limit: float = 10.0) -> None:
        """Wait until the server stops using CPU (two still reads 0.2 s apart)."""
        deadline, last = time.monotonic() + limit, cpu_seconds(self.pid)
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            now = cpu_seconds(self.pid)
            if now == last:
                return
            last = now

    def tokens(
        self, count: int, prefix: str, group: int = 1,
        staff: Callable[[int], bool] = lambda _i: True,
    ) -> list[str]:  # fmt: skip
        tokens = make_tokens(self.key, self.args.issuer, count, prefix, group, staff)
        return connect_packets(tokens)

    async def bounded(self, what: str, work: Awaitable[None]) -> None:
        try:
            await asyncio.wait_for(work, self.timeout)
        except TimeoutError:
            raise SystemExit(f"{what}: not done within {self.timeout} s") from None

    async def warm_up(self, relay: bool = False) -> None:
        """Connects and events the server sees before anything is measured (with ``relay``:
        each warm-up client joins a room of its own and relays ``chat:send`` there)."""
        sockets, tally = Sockets(), Tally()
        packets = self.tokens(WARMUP_CONNECTS, "warm")
        opened = await self.open_indexed("warm-up connects", packets, 10)
        sockets.open.extend(opened)
        sends, acks = event_packets(WARMUP_EVENTS)
        events = (send_events(ws, sends, acks, tally) for ws in opened)
        if relay:
            rooms = [f"tenant:{tenant_of(i)}:warm-{i}" for i in range(len(opened))]
            await self.bounded("warm-up joins", gather(map(join_room, opened, rooms)))
            events = (
                send_events(ws, relay_packets(room, WARMUP_EVENTS), acks, tally)
                for ws, room in zip(opened, rooms, strict=True)
            )
        await self.bounded("warm-up events", gather(events))
        if tally.failures:
            raise SystemExit(f"warm-up failed: {tally.errors}")
        await sockets.close()
        await asyncio.sleep(0.5)

    async def storm(self) -> Result:
        count, concurrency = self.args.count, self.args.concurrency
        packets = self.tokens(count, "storm")
        await self.warm_up()
        sockets, tally = Sockets(), Tally()
        since = self.measure()
        await self.bounded(
            "connect storm", open_many(self.client, packets, concurrency, sockets.keep, tally)
        )
        span = self.measured(since)
        connections, deflate = len(sockets.open), sockets.deflate()
        await self.server_quiet()
        closing = self.snapshot()  # the teardown: every connection closed by its client
        await sockets.close()
        await self.server_quiet()
        disconnects = self.span(closing)
        return Result(
            "storm", len(tally.latencies), tally.failures, tally.errors, span.wall,
            span.server_cpu, span.client_cpu, percentile(tally.latencies, 50),
            percentile(tally.latencies, 99), connections, deflate=deflate,
            other_load=span.other_load, disconnect_cpu_s=disconnects.server_cpu,
        )  # fmt: skip

    async def events(self) -> Result:
        clients, per_client = self.args.clients, self.args.events
        packets = self.tokens(clients, "events")
        sends, acks = event_packets(per_client)
        await self.warm_up()
        sockets, tally = Sockets(), Tally()
        await self.bounded(
            "event clients' connects",
            open_many(self.client, packets, self.args.concurrency, sockets.open.append, tally),
        )
        if tally.failures:
            raise SystemExit(f"event clients could not connect: {tally.errors}")
        tally = Tally()
        await asyncio.sleep(0.5)
        since = self.measure()
        work = (self._events_of(ws, sends, acks, tally) for ws in sockets.open)
        await self.bounded("acked events", gather(work))
        span = self.measured(since)
        connections, deflate = len(sockets.open), sockets.deflate()
        await sockets.close()
        return Result(
            "events", len(tally.latencies), tally.failures, tally.errors, span.wall,
            span.server_cpu, span.client_cpu, percentile(tally.latencies, 50),
            percentile(tally.latencies, 99), connections, deflate=deflate,
            other_load=span.other_load,
        )  # fmt: skip

    async def open_indexed(
        self, what: str, packets: Sequence[str], concurrency: int
    ) -> list[ClientConnection]:
        """One connection per CONNECT packet, in the packets' order (SystemExit if any
        fails: the phases that use it need every member)."""
        opened: list[ClientConnection | None] = [None] * len(packets)
        tally = Tally()
        order = iter(range(len(packets)))

        async def worker() -> None:
            for i in order:
                try:
                    opened[i] = await self.client.open(packets[i])
                except (ConnectRefused, ConnectionClosed, OSError, TimeoutError) as exc:
                    tally.fail(exc)

        await self.bounded(what, gather(worker() for _ in range(min(concurrency, len(packets)))))
        sockets = [ws for ws in opened if ws is not None]
        if tally.failures or len(sockets) != len(packets):
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
            raise SystemExit(f"{what}: {tally.failures} failed: {tally.errors}")
        return sockets

    async def relay(self, size: int) -> Result:
        """``--clients`` rooms of ``size`` members; each room's first member sends
        ``--events`` acked ``chat:send``, the next after the previous ack; the others read
        every ``chat:message`` (the last of a room of more than one is not staff, so field
        visibility applies). Measured until every member received every message."""
        rooms, per_client = self.args.clients, self.args.events
        packets = self.tokens(rooms * size, f"relay{size}", group=size,
                              staff=lambda i: size == 1 or i % size != size - 1)  # fmt: skip
        _, acks = event_packets(per_client)
        await self.warm_up(relay=True)
        members = await self.open_indexed("relay members' connects", packets,
                                          self.args.concurrency)  # fmt: skip
        sockets = Sockets()
        sockets.open.extend(members)
        names = [f"tenant:{tenant_of(g)}:relay{size}-{g}" for g in range(rooms)]
        joins = (join_room(ws, names[i // size]) for i, ws in enumerate(members))
        await self.bounded("room joins", gather(joins))
        listeners = [
            Listener(ws, staff=i % size != size - 1, expected=per_client)
            for i, ws in enumerate(members) if i % size
        ]  # fmt: skip
        sockets.tasks.extend(asyncio.create_task(listener.read()) for listener in listeners)
        tally = Tally()
        await asyncio.sleep(0.5)
        since = self.measure()
        senders = (
            self._events_of(members[g * size], relay_packets(names[g], per_client), acks, tally)
            for g in range(rooms)
        )
        await self.bounded("relayed events", gather(senders))
        await self.bounded("deliveries", gather(ear.done.wait() for ear in listeners))
        span = self.measured(since)
        wrong = sum(listener.wrong_view for listener in listeners)
        if self.args.visibility and wrong:
            tally.fail(f"{wrong} chat:message frames with(out) the note against role:staff")
        deflate = sockets.deflate()
        await sockets.close()
        return Result(
            f"relay{size}", len(tally.latencies), tally.failures, tally.errors, span.wall,
            span.server_cpu, span.client_cpu, percentile(tally.latencies, 50),
            percentile(tally.latencies, 99), len(members), deflate=deflate,
            other_load=span.other_load, deliveries=sum(ear.received for ear in listeners),
            wrong_views=wrong,
        )  # fmt: skip

    async def _events_of(
        self, ws: ClientConnection, sends: Sequence[str], acks: Sequence[str], tally: Tally
    ) -> None:
        try:
            await send_events(ws, sends, acks, tally)
        except ConnectionClosed as exc:
            tally.fail(exc)

    async def idle(self) -> Result:
        count, concurrency = self.args.count, self.args.concurrency
        packets = self.tokens(count, "idle")
        await self.warm_up()
        await asyncio.sleep(self.args.settle)
        before = rss_kib(self.pid)
        sockets, tally = Sockets(), Tally()
        since = self.measure()
        await self.bounded(
            "idle connects", open_many(self.client, packets, concurrency, sockets.keep, tally)
        )
        span = self.measured(since)
        await asyncio.sleep(self.args.settle)
        after = rss_kib(self.pid)
        connections = sum(1 for ws in sockets.open if ws.close_code is None)
        deflate = sockets.deflate()
        await sockets.close()
        return Result(
            "idle", len(tally.latencies), tally.failures, tally.errors, span.wall,
            span.server_cpu, span.client_cpu, percentile(tally.latencies, 50),
            percentile(tally.latencies, 99), connections, before, after, deflate,
            span.other_load,
        )  # fmt: skip


async def gather(work: Any) -> None:
    coroutines: list[Coroutine[Any, Any, None]] = list(work)
    await asyncio.gather(*coroutines)


async def run(args: argparse.Namespace) -> Result:
    phase = Phase(args)
    runner: dict[str, Callable[[], Awaitable[Result]]] = {
        "storm": phase.storm, "events": phase.events, "idle": phase.idle,
        "relay": lambda: phase.relay(1), "relay10": lambda: phase.relay(ROOM_SIZE),
    }  # fmt: skip
    return await runner[args.phase]()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("phase", choices=["storm", "events", "idle", "relay", "relay10"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--server-core", type=int, default=0, help="the core it is pinned to")
    parser.add_argument("--key", required=True, help="PEM file of the issuer's RSA key")
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--count", type=int, default=2000, help="connects (storm, idle)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--clients", type=int, default=200, help="event clients")
    parser.add_argument("--events", type=int, default=200, help="acked events per client")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before RSS reads")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound of each step")
    parser.add_argument("--no-deflate", dest="deflate", action="store_false")
    parser.add_argument(
        "--visibility", action="store_true",
        help="relay10: a note seen by the non-staff member (or missed by staff) is a failure",
    )  # fmt: skip
    parser.add_argument(
        "--signal-profile", action="store_true", help="SIGUSR1/SIGUSR2 the server around it"
    )
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
