"""Rolling deploy benchmark: connection state recovery while both nodes of a cluster are
restarted one after the other, behind a round-robin balancer.

* two ssoio nodes (``servers/ssoio_node.py --cluster REDIS --recovery``, run as ``ssoio
  serve`` runs them) over one redis-server, each restarted with SIGTERM (a drain: their
  sockets are closed, clients reconnect elsewhere) then started again;
* a round-robin TCP balancer (``--role balancer``: a few lines of asyncio; a backend
  that refuses the TCP connection is skipped for the next one);
* ``--clients`` lean Socket.IO clients over WebSocket (``loadgen.py``'s protocol, plus
  socket.io 4.6+'s recovery: the ``pid`` of the CONNECT answer and the last ``offset``
  received are sent in the next CONNECT, ``recovered`` is the same pid coming back),
  each a distinct user of one of ``--rooms`` tenants, auto-joined to ``tenant:{tenant}``;
  on a lost transport a client reconnects through the balancer after a random 0-0.5 s
  (retrying while a draining node refuses it);
* a publisher: ``--rate`` events per second in total, round robin over the rooms,
  through the balancer's HTTP side to ``POST /api/v1/emit``; an event counts as sent
  once its POST was answered 200 (a failed POST is retried with the same id and a new
  attempt number: a POST whose answer was lost may have been delivered too, and such a
  copy is not a duplicate of recovery's making; a duplicate is one attempt received
  twice).

The JWKS is served by this driver, which counts the fetches. Phases: connect every
client (fresh connects), publish for ``--steady`` s, restart node A (SIGTERM, wait until
it exited, start it, wait until every client is back), ``--steady`` s, the same with node
B, ``--steady`` s, stop publishing and let the last events arrive.

Reported: the share of reconnects that were recovered, events lost by clients whose
every reconnect was recovered (must be 0) and by the others, duplicates (must be 0), the
time from each SIGTERM until every client is connected again, JWKS fetches per phase,
and the nodes' CPU per fresh connect (the connect phase) against per recovery (the
surviving node's CPU over the storm, less its CPU over as long a steady span, per
recovery it served).

Run: ``.venv/bin/python benchmarks/rolling_deploy.py [--clients 2000] [--rate 50]``;
the report goes to stdout and ``results/rolling_deploy.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from benchmarks.loadgen import AUDIENCE, cpu_seconds, sign
from benchmarks.realtime import ISSUER, public_jwk

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "benchmarks" / "servers" / "ssoio_node.py"
EVENT = "tick"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the balancer (its own process) -------------------------------------------------------


async def balance(port: int, backends: list[int]) -> None:
    """Round robin over ``backends``; a backend refusing the connection is skipped."""
    turn = 0

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal turn
        for _ in range(len(backends)):
            backend = backends[turn % len(backends)]
            turn += 1
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend)
            except OSError:
                continue
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            return
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


# -- the JWKS (in this process, counted) ---------------------------------------------------


@dataclass
class Jwks:
    body: bytes
    fetches: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while (line := await reader.readline()) and line.strip():
                pass
            self.fetches += 1
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
            writer.write(head.encode() + self.body)
            await writer.drain()
            writer.close()


# -- the clients ----------------------------------------------------------------------------


@dataclass
class Member:
    """One client: its token and room, its recovery state, what it received."""

    token: str
    room: str
    pid: str | None = None
    offset: str | None = None
    connected: bool = False
    received: dict[tuple[int, int], int] = field(default_factory=dict)  # (id, attempt)
    fresh: int = 0
    recovered: int = 0
    not_recovered: int = 0
    refused: int = 0


@dataclass
class Crowd:
    url: str
    members: list[Member]
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def connected(self) -> int:
        return sum(m.connected for m in self.members)

    async def run(self, member: Member) -> None:
        while not self.stop.is_set():
            try:
                await self._session(member)
            except (OSError, WebSocketException, TimeoutError, ValueError):
                if not member.connected:
                    member.refused += 1  # refused (a draining node) or unreachable: again
            member.connected = False
            await asyncio.sleep(random.uniform(0.0, 0.5))

    async def _session(self, member: Member) -> None:
        async with connect(self.url, compression=None, ping_interval=None, proxy=None,
                           open_timeout=20, close_timeout=1, max_queue=None,
                           user_agent_header=None) as ws:  # fmt: skip
            opened = await asyncio.wait_for(ws.recv(), 20)
            if not isinstance(opened, str) or not opened.startswith("0{"):
                return
            auth: dict[str, Any] = {"token": member.token}
            if member.pid is not None:  # socket.io-client: Object.assign({pid, offset}, auth)
                auth = {"pid": member.pid, **({"offset": member.offset} if member.offset else {}),
                        **auth}  # fmt: skip
            await ws.send("40" + json.dumps(auth, separators=(",", ":")))
            await self._answered(ws, member)
            async for message in ws:
                self._on(member, message)
                if message == "2":
                    await ws.send("3")

    async def _answered(self, ws: ClientConnection, member: Member) -> None:
        while True:
            message = await asyncio.wait_for(ws.recv(), 20)
            if isinstance(message, str) and message.startswith("40"):
                pid = json.loads(message[2:]).get("pid")
                if member.pid is None:
                    member.fresh += 1
                elif pid == member.pid:
                    member.recovered += 1
                else:
                    member.not_recovered += 1
                member.pid, member.connected = pid, True
                return
            if isinstance(message, str) and message.startswith("44"):
                raise ValueError("refused")
            self._on(member, message)  # (a replayed event never precedes the answer)

    @staticmethod
    def _on(member: Member, message: object) -> None:
        if not isinstance(message, str) or not message.startswith("42"):
            return
        args = json.loads(message[2:])
        if args[0] != EVENT:
            return
        key = (int(args[1]["i"]), int(args[1]["a"]))
        member.received[key] = member.received.get(key, 0) + 1
        if len(args) > 2 and isinstance(args[-1], str):
            member.offset = args[-1]


# -- the nodes -------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    port: int
    argv: list[str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(*self.argv, stdout=out,
                                                                stderr=out)  # fmt: skip

    async def ready(self) -> None:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise SystemExit(f"node {self.name} not ready:\n{self.log.read_text()[-3000:]}")

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid) if self.process else 0.0

    async def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@dataclass
class Publisher:
    url: str
    token: str
    rooms: list[str]
    rate: float
    sent: dict[int, str] = field(default_factory=dict)  # id -> room
    failures: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(timeout=5, headers=headers) as http:
            number, attempt, started = 0, 0, time.monotonic()
            while not stop.is_set():
                room = self.rooms[number % len(self.rooms)]
                attempt += 1  # a retried POST may have been delivered: told apart
                body = {"room": room, "event": EVENT, "data": {"i": number, "a": attempt}}
                try:
                    answer = await http.post(f"{self.url}/api/v1/emit", json=body)
                except httpx.HTTPError:
                    answer = None
                if answer is None or answer.status_code != 200:
                    self.failures += 1
                    await asyncio.sleep(0.05)
                    continue  # the same id again: only acknowledged events count
                self.sent[number] = room
                number += 1
                await asyncio.sleep(max(0.0, started + number / self.rate - time.monotonic()))


# -- the run -------------------------------------------------------------------------------


def node_argv(port: int, jwks_uri: str, name: str, redis_port: int) -> list[str]:
    return [sys.executable, str(NODE), "--port", str(port), "--issuer", ISSUER, "--jwks-uri",
            jwks_uri, "--node-id", name, "--cluster", f"redis://127.0.0.1:{redis_port}/0",
            "--recovery"]  # fmt: skip


async def wait_all_back(crowd: Crowd, limit: float) -> float | None:
    started = shown = time.monotonic()
    while time.monotonic() - started < limit:
        if crowd.connected == len(crowd.members):
            return time.monotonic() - started
        if time.monotonic() - shown >= 1:  # progress, on stderr
            shown = time.monotonic()
            print(f"{shown - started:5.1f} s: {crowd.connected} connected", file=sys.stderr)
        await asyncio.sleep(0.05)
    return None


async def restart(node: Node, crowd: Crowd, limit: float) -> dict[str, Any]:
    began = time.monotonic()
    await node.terminate()
    await node.start()
    await node.ready()
    back = await wait_all_back(crowd, limit)
    return {"node": node.name, "all_back_s": None if back is None else time.monotonic() - began}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="ssoio-rolling-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = Jwks(json.dumps({"keys": [public_jwk(key)]}).encode())
    jwks_port, redis_port, balancer_port = free_port(), free_port(), free_port()
    jwks_server = await asyncio.start_server(jwks.serve, "127.0.0.1", jwks_port)
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        raise SystemExit("redis-server is needed")
    redis = await asyncio.create_subprocess_exec(
        redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    ports = {"a": free_port(), "b": free_port()}
    jwks_uri = f"http://127.0.0.1:{jwks_port}/jwks.json"
    nodes = {name: Node(name, port, node_argv(port, jwks_uri, name, redis_port),
                        workdir / f"{name}.log") for name, port in ports.items()}  # fmt: skip
    balancer = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--role", "balancer", "--port", str(balancer_port),
        "--backends", f"{ports['a']},{ports['b']}",
    )  # fmt: skip
    try:
        return await measure(args, key, jwks, nodes, balancer_port)
    finally:
        for node in nodes.values():
            if node.process and node.process.returncode is None:
                node.process.kill()
        balancer.kill()
        redis.kill()
        jwks_server.close()


async def measure(
    args: argparse.Namespace, key: rsa.RSAPrivateKey, jwks: Jwks, nodes: dict[str, Node],
    balancer_port: int,
) -> dict[str, Any]:  # fmt: skip
    for node in nodes.values():
        await node.start()
    await asyncio.gather(*(node.ready() for node in nodes.values()))
    now = int(time.time())
    rooms = [f"t{n}" for n in range(args.rooms)]
    members = [Member(sign(key, {
        "iss": ISSUER, "sub": f"rolling-{n}", "aud": AUDIENCE, "exp": now + 7200, "iat": now,
        "jti": os.urandom(8).hex(), "client_id": "bench-web", "scope": "openid",
        "realm_access": {"roles": []}, "tenant": rooms[n % len(rooms)],
    }), f"tenant:{rooms[n % len(rooms)]}") for n in range(args.clients)]  # fmt: skip
    crowd = Crowd(f"ws://127.0.0.1:{balancer_port}/socket.io/?EIO=4&transport=websocket", members)
    phases: dict[str, Any] = {"jwks_at_start": jwks.fetches}
    cpu0 = sum(n.cpu() for n in nodes.values())
    tasks = [asyncio.create_task(crowd.run(m)) for m in members]
    connect_s = await wait_all_back(crowd, 300)
    phases["connect_s"] = connect_s
    phases["cpu_per_fresh_connect_us"] = (sum(n.cpu() for n in nodes.values()) - cpu0) / len(
        members) * 1e6  # fmt: skip
    api = sign(key, {"iss": ISSUER, "sub": "bench-backend", "aud": AUDIENCE, "exp": now + 7200,
                     "iat": now, "jti": os.urandom(8).hex(), "client_id": "bench-backend",
                     "scope": "ssoio:emit"})  # fmt: skip
    publisher = Publisher(f"http://127.0.0.1:{balancer_port}", api, [f"tenant:{r}" for r in rooms],
                          args.rate)  # fmt: skip
    stop_publishing = asyncio.Event()
    publishing = asyncio.create_task(publisher.run(stop_publishing))
    restarts = []
    for name, survivor in (("a", "b"), ("b", "a")):
        steady_cpu = nodes[survivor].cpu()
        await asyncio.sleep(args.steady)
        steady_cpu = nodes[survivor].cpu() - steady_cpu
        before = {"jwks": jwks.fetches, "recovered": sum(m.recovered for m in members),
                  "cpu": nodes[survivor].cpu(), "t": time.monotonic()}  # fmt: skip
        result = await restart(nodes[name], crowd, args.storm_limit)
        span = time.monotonic() - before["t"]
        recoveries = sum(m.recovered for m in members) - before["recovered"]
        storm_cpu = nodes[survivor].cpu() - before["cpu"]
        extra = storm_cpu - steady_cpu * span / args.steady
        per = extra / recoveries * 1e6 if recoveries else None
        result.update(jwks_fetches=jwks.fetches - before["jwks"], recoveries=recoveries,
                      survivor_cpu_per_recovery_us=per)  # fmt: skip
        restarts.append(result)
    await asyncio.sleep(args.steady)
    stop_publishing.set()
    await publishing
    await asyncio.sleep(2)
    crowd.stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return tally(args, members, publisher, phases, restarts)


def tally(args: argparse.Namespace, members: list[Member], publisher: Publisher,
          phases: dict[str, Any], restarts: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    by_room: dict[str, set[int]] = {}
    for number, room in publisher.sent.items():
        by_room.setdefault(room, set()).add(number)
    lost_recovered = lost_other = duplicates = 0
    for member in members:
        got = {number for number, _attempt in member.received}
        missing = len(by_room.get(member.room, set()) - got)
        duplicates += sum(count - 1 for count in member.received.values())
        if member.not_recovered:
            lost_other += missing
        else:
            lost_recovered += missing
    reconnects = sum(m.recovered + m.not_recovered for m in members)
    return {
        "clients": args.clients, "rooms": args.rooms, "rate": args.rate,
        "events_sent": len(publisher.sent), "publish_failures_retried": publisher.failures,
        "reconnects": reconnects, "recovered": sum(m.recovered for m in members),
        "recovered_share": sum(m.recovered for m in members) / reconnects if reconnects else None,
        "clients_not_recovered_once": sum(1 for m in members if m.not_recovered),
        "lost_by_recovered_clients": lost_recovered, "lost_by_others": lost_other,
        "duplicates": duplicates, **phases, "restarts": restarts,
    }  # fmt: skip


def report(result: dict[str, Any]) -> str:
    lines = [
        "# Rolling deploy: connection state recovery (benchmarks/rolling_deploy.py)", "",
        f"{result['clients']} clients in {result['rooms']} rooms, {result['rate']} events/s in "
        "total, two nodes over Redis behind a round-robin balancer; node A restarted "
        "(SIGTERM, drain), then node B.", "",
        "| figure | value |", "| --- | --- |",
        f"| events sent (acknowledged by the API) | {result['events_sent']} |",
        f"| reconnects / recovered | {result['reconnects']} / {result['recovered']} |",
        f"| share recovered | {_pct(result['recovered_share'])} |",
        f"| events lost by clients always recovered | {result['lost_by_recovered_clients']} |",
        f"| events lost by clients not recovered once | {result['lost_by_others']} |",
        f"| duplicates | {result['duplicates']} |",
        f"| initial connect of every client | {_s(result['connect_s'])} |",
        f"| node CPU per fresh connect | {result['cpu_per_fresh_connect_us']:.0f} us |",
        f"| JWKS fetches at start | {result['jwks_at_start']} |",
    ]  # fmt: skip
    for step in result["restarts"]:
        per = step["survivor_cpu_per_recovery_us"]
        lines += [
            f"| restart {step['node']}: SIGTERM to every client back | {_s(step['all_back_s'])} |",
            f"| restart {step['node']}: recoveries, JWKS fetches | {step['recoveries']}, "
            f"{step['jwks_fetches']} |",
            f"| restart {step['node']}: surviving node CPU per recovery | "
            f"{'-' if per is None else f'{per:.0f} us'} |",
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _s(value: float | None) -> str:
    return "did not happen" if value is None else f"{value:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", choices=["driver", "balancer"], default="driver")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backends", default="")
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--steady", type=float, default=10.0)
    parser.add_argument("--storm-limit", type=float, default=120.0)
    args = parser.parse_args()
    if args.role == "balancer":
        asyncio.run(balance(args.port, [int(p) for p in args.backends.split(",")]))
        return
    result = asyncio.run(run(args))
    text = report(result)
    print(text)
    print(json.dumps(result, indent=1))
    (ROOT / "benchmarks" / "results" / "rolling_deploy.md").write_text(
        text + "\n```json\n" + json.dumps(result, indent=1) + "\n```\n"
    )


if __name__ == "__main__":
    main()
