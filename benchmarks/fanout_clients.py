"""The receiving end of ``benchmarks/fanout.py``: many connections, all in one room.

One process holds ``--count`` authenticated connections to one ssoio node, opened with the
lean load generator's client (``loadgen.Client``: a plain ``websockets`` socket speaking
Engine.IO 4 / Socket.IO 5, websocket transport only). Each connection has its own RS256
access token (``sub`` = PREFIX-user-i) whose ``tenant`` claim is ``--tenant``, so the node
auto-joins every one of them to ``tenant:TENANT``: the room the driver emits to.

The connects can be paced (``--rate``): spread over one Engine.IO ping interval, the
server's pings to them are spread evenly too, instead of coming back in one burst.

Every connection reads its socket in its own task, answers Engine.IO pings, and records
each ``fanout`` event ``42["fanout",{"i":ID,"t":SENT}]``: which message (``i``), and its
delivery latency ``time.time()`` at receipt minus ``t`` (the publisher's ``time.time()``
just before it posted the message; same machine, same clock).

The driver talks to it over stdin/stdout, one JSON object per line:

* on start, after every connect: ``{"ready": true, "connected": N, ...}``;
* ``drain FIRST COUNT TIMEOUT``: wait until every connection has each message
  ``FIRST .. FIRST+COUNT-1`` (at most TIMEOUT seconds, or until nothing arrives for
  ``--stall`` seconds), then answer with what arrived (each message's latencies in µs,
  receipts missing, duplicates, first and last receipt) and forget it;
* ``quit``: close every connection and exit.

Run (``benchmarks/fanout.py`` does, from the repository root): ``.venv/bin/python -m
benchmarks.fanout_clients --port N --key FILE --issuer URL --count 2500``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from benchmarks.loadgen import AUDIENCE, Client, ConnectRefused, Sockets, Tally, open_many, sign
from benchmarks.realtime import raise_file_limit

EVENT = "fanout"
PREFIX = f'42["{EVENT}",'  # an EVENT packet of the default namespace, no ack id


# -- tokens ---------------------------------------------------------------------------------


def member_tokens(
    key: rsa.RSAPrivateKey, issuer: str, count: int, prefix: str, tenant: str
) -> list[str]:
    """``count`` access tokens of distinct users of one tenant (Keycloak-style claims)."""
    now = int(time.time())
    tokens = []
    for i in range(count):
        claims = {
            "iss": issuer, "sub": f"{prefix}-user-{i}", "aud": AUDIENCE, "exp": now + 7200,
            "iat": now, "jti": f"{prefix}-{i}-{os.urandom(6).hex()}", "client_id": "bench-web",
            "scope": "openid chat", "realm_access": {"roles": ["staff"]}, "tenant": tenant,
        }  # fmt: skip
        tokens.append(sign(key, claims))
    return tokens


def load_key(path: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SystemExit("--key must be an RSA private key")
    return key


# -- receiving ------------------------------------------------------------------------------


@dataclass
class Deliveries:
    """What the connections received since the last drain."""

    seen: list[set[int]]
    latencies: dict[int, list[float]] = field(default_factory=dict)  # message -> receipts
    distinct: int = 0
    duplicates: int = 0
    first: float | None = None
    last: float | None = None

    @classmethod
    def empty(cls, connections: int) -> Deliveries:
        return cls([set() for _ in range(connections)])

    def record(self, slot: int, message: int, latency: float, now: float) -> None:
        seen = self.seen[slot]
        if message in seen:
            self.duplicates += 1
            return
        seen.add(message)
        self.distinct += 1
        receipts = self.latencies.get(message)
        if receipts is None:
            receipts = self.latencies[message] = []
        receipts.append(latency)
        if self.first is None:
            self.first = now
        self.last = now

    def count_in(self, wanted: range) -> int:
        return sum(len(receipts) for i, receipts in self.latencies.items() if i in wanted)


class Receivers:
    """The open connections, each read by its own task."""

    def __init__(self) -> None:
        self.sockets = Sockets()
        self.deliveries = Deliveries.empty(0)
        self.closed = 0

    def keep(self, ws: ClientConnection) -> None:
        slot = len(self.sockets.open)
        self.sockets.open.append(ws)
        self.deliveries.seen.append(set())
        self.sockets.tasks.append(asyncio.create_task(self.receive(ws, slot)))

    async def receive(self, ws: ClientConnection, slot: int) -> None:
        skip = len(PREFIX)
        try:
            async for message in ws:
                if not isinstance(message, str):
                    continue
                if message.startswith(PREFIX):
                    now = time.time()
                    body = json.loads(message[skip:-1])
                    self.deliveries.record(slot, body["i"], now - body["t"], now)
                elif message == "2":
                    await ws.send("3")
        except ConnectionClosed:
            pass
        self.closed += 1

    async def drain(self, first: int, count: int, limit: float, stall: float) -> dict[str, Any]:
        """Wait for messages ``first .. first+count-1`` on every connection; report them."""
        wanted = range(first, first + count)
        expected = len(self.sockets.open) * count
        deadline = time.monotonic() + limit
        last_count, last_change = -1, time.monotonic()
        while True:
            distinct = self.deliveries.distinct
            if distinct != last_count:
                last_count, last_change = distinct, time.monotonic()
            if distinct >= expected and self.deliveries.count_in(wanted) >= expected:
                break
            if time.monotonic() > deadline or time.monotonic() - last_change > stall:
                break
            await asyncio.sleep(0.02)
        got, self.deliveries = self.deliveries, Deliveries.empty(len(self.sockets.open))
        received = got.count_in(wanted)
        return {
            "expected": expected,
            "received": received,
            "missing": expected - received,
            "duplicates": got.duplicates,
            "stray": got.distinct - received,
            "incomplete_connections": sum(1 for seen in got.seen if not seen.issuperset(wanted)),
            "closed_connections": self.closed,
            "latencies_us": {
                str(i): [round(latency * 1e6) for latency in receipts]
                for i, receipts in got.latencies.items()
                if i in wanted
            },
            "first_receipt": got.first,
            "last_receipt": got.last,
        }


async def open_paced(
    client: Client,
    packets: Sequence[str],
    rate: float,
    concurrency: int,
    on_open: Callable[[ClientConnection], None],
    tally: Tally,
) -> None:
    """Open one connection per CONNECT packet, the i-th started ``i / rate`` seconds in
    (``rate`` 0: as fast as ``concurrency`` connects in flight allow)."""
    if rate <= 0:
        await open_many(client, packets, concurrency, on_open, tally)
        return
    gate = asyncio.Semaphore(concurrency)

    async def one(packet: str) -> None:
        try:
            ws = await client.open(packet)
        except (ConnectRefused, ConnectionClosed, OSError, TimeoutError) as exc:
            tally.fail(exc)
            return
        finally:
            gate.release()
        on_open(ws)

    start, tasks = time.perf_counter(), []
    for i, packet in enumerate(packets):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await gate.acquire()
        tasks.append(asyncio.create_task(one(packet)))
    await asyncio.gather(*tasks)


# -- the process ----------------------------------------------------------------------------


def say(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def run(args: argparse.Namespace) -> None:
    nofile = raise_file_limit()
    packets = [
        "40" + json.dumps({"token": token}, separators=(",", ":"))
        for token in member_tokens(
            load_key(args.key), args.issuer, args.count, args.prefix, args.tenant
        )
    ]
    client = Client(f"ws://127.0.0.1:{args.port}/socket.io/?EIO=4&transport=websocket", False)
    receivers, tally = Receivers(), Tally()
    started = time.perf_counter()
    try:
        await asyncio.wait_for(
            open_paced(client, packets, args.rate, args.concurrency, receivers.keep, tally),
            args.timeout,
        )
    except TimeoutError:
        tally.fail(f"connects not done within {args.timeout} s")
    say({
        "ready": True, "connected": len(receivers.sockets.open), "failures": tally.failures,
        "errors": tally.errors, "connect_wall_s": time.perf_counter() - started,
        "nofile": list(nofile), "pid": os.getpid(),
    })  # fmt: skip
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "drain":
            first, count, timeout = int(words[1]), int(words[2]), float(words[3])
            say(await receivers.drain(first, count, timeout, args.stall))
        else:
            say({"error": f"unknown command {words[0]!r}"})
    await receivers.sockets.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="the node's port")
    parser.add_argument("--key", required=True, help="PEM file of the issuer's RSA key")
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--count", type=int, default=2500, help="connections held")
    parser.add_argument("--prefix", default="fan", help="of the users' sub claims")
    parser.add_argument("--tenant", default="acme", help="every user's tenant claim")
    parser.add_argument("--concurrency", type=int, default=50, help="connects in flight")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="connects per second (0: no pacing)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="bound of the connects")
    parser.add_argument("--stall", type=float, default=10.0,
                        help="a drain gives up after this long without a receipt")  # fmt: skip
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
