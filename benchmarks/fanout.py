"""Fan-out benchmark: one message to 5,000 connections in one room, on one node and on two,
next to bare python-socketio and Node socket.io 4.8 on one node (issue #19).

Up to five configurations run one after the other, each on fresh processes:

* **bare python-socketio** and **Node socket.io 4.8** (the baselines, run with the single
  node, first, as ``realtime.py`` runs them; ``--no-bare`` / ``--no-node`` leave one out):
  ``servers/bare.py`` and ``servers/node_socketio.mjs`` (socket.io installed with ``npm
  ci`` on first use), each with ``--fanout-room tenant:acme``: every connection joins the
  room as it connects, and ``POST /api/v1/emit`` emits the posted event to it; no
  authentication (the CONNECT's token and the bearer token are ignored). They hold every
  connection on core 0, as the single node does, with the same load generators,
  publisher, modes and checks;
* **single node**: one ssoio node (``servers/ssoio_node.py``, run as ``ssoio serve`` runs
  it) holding every connection;
* **two nodes, both on core 0**: two nodes with the same configuration plus
  ``[cluster] redis_url`` (``servers/ssoio_node.py --cluster``), half of the connections
  on each; the servers keep the core they have in the single-node case, and share it;
* **two nodes, one core each** (``--layouts``): the same, each node on a core of its own,
  sharing it with a load generator (the only way two nodes get two cores here).

The connections come from load-generator processes (``fanout_clients.py``, built on the
lean client of ``loadgen.py``), ``--connections / --loadgens`` each; every token is a
distinct user of tenant ``acme``, so the node auto-joins every connection to
``tenant:acme``. With two nodes, load generator k connects to node k mod 2.

A publisher (this driver) posts ``{"room": "tenant:acme", "event": "fanout", "data":
{"i": ID, "t": SENT}}`` to ``POST /api/v1/emit`` of node A only, with a bearer access token
of scope ``ssoio:emit`` signed by the benchmark issuer; ``t`` is ``time.time()`` just
before the request, and each recipient's latency is its own ``time.time()`` at receipt
minus ``t`` (one machine, one clock). So with two nodes, the recipients on node B are
reached through Redis (python-socketio's Redis manager). Two modes, after a warm-up:

* **paced**: ``--messages`` messages, one every ``--interval`` seconds: delivery latency;
* **burst**: ``--burst`` messages posted back to back, each as soon as the previous POST
  answered: recipient-deliveries per second, from the first POST to the last receipt.

The connects are spread over ``--connect-spread`` seconds (one Engine.IO ping interval by
default: the pings then come evenly, not in one burst every 25 s), and measuring starts
once the per-session timers ssoio sets at each connect (``unauthenticated_timeout_s``, 5 s)
have fired: both would otherwise land in a mode, differently in each configuration. The
idle CPU share of every node (pings only) is reported.

Every (message, recipient) pair is checked: receipts missing, duplicates. CPU of every
process (nodes, redis-server, load generators) is its utime + stime delta over the mode
(``/proc/PID/stat``), and each core's busy share comes from ``/proc/stat``. Every child
raises its soft ``RLIMIT_NOFILE`` to the hard limit before it starts (``setrlimit`` in its
pre-exec), the driver too; the report gives the limit read back from ``/proc/PID/limits``.
Each node also times its cyclic garbage collector over each mode (``ssoio_node.py
--gc-stats``, between SIGUSR1 and SIGUSR2): the share of its CPU spent there.

Pinning (two cores): the single node (and each baseline) on core 0, the load generators,
the publisher, the JWKS server and redis-server on core 1; "both on core 0" keeps that;
"one core each" puts node A on core 0 and node B on core 1, the load generator of node A
on core 1 and that of node B on core 0, redis-server and the publisher on core 1.

The report gives ssoio's single-node figures divided by each baseline's (CPU per
delivery, rates, latencies), the two-node configurations' divided by the single node's, and
issue #19's targets for ssoio on one node: server CPU per delivery (burst) ≤ 10 µs, paced
delivery latency p99 < 100 ms, with the baselines' values beside them; receipts missing and
duplicated must be 0 everywhere. The baselines have no GC statistics and are not profiled.

When a two-node configuration is much slower than the single node (under 80 % of its
burst rate, or over 1.5 times its paced p50 latency; or with ``--profile always``), two
further passes, the single node and two nodes both on core 0, run the burst with every
node under cProfile, and the report says where their time goes.

Run: ``.venv/bin/python benchmarks/fanout.py [--connections N] [--messages N]
[--interval S] [--burst N] [--layouts single,shared,spread] [--no-bare] [--no-node]``; the
report goes to stdout and ``results/fanout.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import json
import math
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

if not __package__:  # run as a file: make the `benchmarks` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fanout_clients import EVENT
from benchmarks.loadgen import AUDIENCE, core_busy_seconds, cpu_seconds, sign
from benchmarks.realtime import (
    ISSUER,
    NODE_SERVER,
    Target,
    fmt,
    free_port,
    install_node_server,
    load_profile,
    machine_line,
    node_binary,
    package_table,
    pin,
    public_jwk,
    raise_file_limit,
    top_table,
    uvicorn_auto_ws,
    where,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "fanout.md"
TENANT = "acme"
ROOM = f"tenant:{TENANT}"
PR_SET_PDEATHSIG = 1  # prctl(2)
WARMUP_MESSAGES = 3
# ssoio's realtime.unauthenticated_timeout_s (default): each Engine.IO session's timer fires
# that long after it opened, even once authenticated (a stale entry); measuring starts after.
SESSION_TIMERS_S = 5.0
PACED_FIRST, BURST_FIRST = 1_000, 100_000  # message ids of each mode (warm-ups: 0, 100, ...)


# -- processes --------------------------------------------------------------------------------


def child_setup(core: int) -> Callable[[], None]:
    """A child's pre-exec: pinned to ``core``, descriptor limit raised, and killed when this
    driver dies."""

    def preexec() -> None:
        pin(0, core)
        raise_file_limit()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return preexec


def open_files_limit(pid: int) -> str:
    """``soft/hard`` of ``Max open files`` of process ``pid``, from ``/proc/PID/limits``."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft}/{hard}"
    return "unknown"


class Child:
    """A child process with a log file, a bounded stop, and optionally a line protocol on
    stdin/stdout (read by a thread, so every wait has a bound)."""

    def __init__(self, name: str, argv: list[str], log: Path, core: int, talk: bool = False):
        self.name = name
        self.log = log
        self.lines: queue.Queue[str] = queue.Queue()
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE if talk else out, stderr=out,
                stdin=subprocess.PIPE if talk else subprocess.DEVNULL, text=talk,
                preexec_fn=child_setup(core), cwd=ROOT,
            )  # fmt: skip
        if talk:
            threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put("")  # end of file

    def tell(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float) -> dict[str, Any]:
        """The next JSON line the child writes, waiting at most ``timeout`` seconds."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise SystemExit(f"{self.name}: no answer within {timeout} s\n{self.tail()}") from None
        if not line:
            raise SystemExit(f"{self.name} exited:\n{self.tail()}")
        document: dict[str, Any] = json.loads(line)
        return document

    def wait_listening(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited early:\n{self.tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.1)
        raise SystemExit(f"{self.name} is not listening after {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, grace: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


# -- the configurations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where each process runs: load generator k connects to node k mod (number of nodes)
    and runs on ``client_cores[k % 2]``. ``server`` is what the nodes are: ssoio
    (``servers/ssoio_node.py``), or a baseline, ``bare`` (``servers/bare.py``) or ``node``
    (``servers/node_socketio.mjs``), each with ``--fanout-room``."""

    key: str
    label: str
    node_cores: tuple[int, ...]
    client_cores: tuple[int, int]
    redis_core: int = 1
    driver_core: int = 1
    server: str = "ssoio"

    @property
    def nodes(self) -> int:
        return len(self.node_cores)

    def describe(self) -> str:
        if self.server != "ssoio":
            return (f"server core {self.node_cores[0]}; load generators cores "
                    f"{' / '.join(map(str, self.client_cores))}; publisher core "
                    f"{self.driver_core}")  # fmt: skip
        nodes = ", ".join(f"node {'AB'[i]} core {c}" for i, c in enumerate(self.node_cores))
        clients = " / ".join(str(c) for c in self.client_cores)
        redis = f", redis-server core {self.redis_core}" if self.nodes > 1 else ""
        return (f"{nodes}; load generators (of node {'A / B' if self.nodes > 1 else 'A'}) "
                f"cores {clients}{redis}; publisher core {self.driver_core}")  # fmt: skip


LAYOUTS = {
    "single": Layout("single", "single node", (0,), (1, 1)),
    "shared": Layout("shared", "two nodes, both on core 0", (0, 0), (1, 1)),
    "spread": Layout("spread", "two nodes, one core each", (0, 1), (1, 0)),
}
# The baselines, pinned as the single node is and run next to it (--no-bare, --no-node).
BASELINES = {
    "bare": Layout("bare", "bare python-socketio", (0,), (1, 1), server="bare"),
    "node": Layout("node", "Node socket.io 4.8", (0,), (1, 1), server="node"),
}
# issue #19, for ssoio on one node (the baselines' values beside them)
TARGETS = (
    Target("server CPU per delivery (burst)", "burst", "cpu_A_us", 10, "µs"),
    Target("paced delivery latency p99", "paced", "p99", 100, "ms", strict=True),
)


@dataclass
class Snapshot:
    cpu: dict[str, float]
    busy: list[float]
    wall: float


@dataclass
class ModeResult:
    """One mode of one configuration: what was sent, received, and what it cost."""

    name: str
    count: int
    sent: list[float]  # time.time() of each POST
    post_s: list[float]  # each POST's round trip
    replies: list[dict[str, Any]]  # one drain answer per load generator
    cpu: dict[str, float]  # process -> CPU seconds over the mode
    busy: list[float]  # core -> busy share over the mode
    wall: float
    gc: dict[str, dict[str, Any]]  # node -> its cyclic GC's seconds and collections


@dataclass
class ConfigResult:
    layout: Layout
    connected: list[int]  # per load generator
    connect_failures: int
    connect_errors: list[str]
    warmup_missing: list[int]
    limits: dict[str, str]
    client_node: list[int]  # load generator -> node index
    modes: dict[str, ModeResult] = field(default_factory=dict)
    idle_cpu: dict[str, float] = field(default_factory=dict)  # CPU share while idle
    profiles: dict[str, Path] = field(default_factory=dict)


class Bench:
    """The temporary directory, the issuer's key, the JWKS server, and every child."""

    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.stack = stack
        self.dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ssoio-fan-")))
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_file = self.dir / "key.pem"
        self.key_file.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (self.dir / "jwks.json").write_text(json.dumps({"keys": [public_jwk(self.key)]}))
        self.logs = 0
        port = free_port()
        self.jwks_uri = f"http://127.0.0.1:{port}/jwks.json"
        self.jwks = self.child(
            "jwks", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                     "--directory", str(self.dir)], 1,
        )  # fmt: skip
        self.jwks.wait_listening(port)
        now = int(time.time())
        self.api_token = sign(self.key, {
            "iss": ISSUER, "sub": "bench-backend", "aud": AUDIENCE, "exp": now + 7200,
            "iat": now, "jti": os.urandom(8).hex(), "client_id": "bench-backend",
            "scope": "ssoio:emit",
        })  # fmt: skip
        self.redis_binary = shutil.which("redis-server")

    def child(self, name: str, argv: list[str], core: int, talk: bool = False) -> Child:
        self.logs += 1
        log = self.dir / f"{self.logs:02d}-{re.sub(r'[^a-z0-9]+', '-', name.lower())}.log"
        child = Child(name, argv, log, core, talk)
        self.stack.callback(child.stop)
        return child

    # -- one configuration --------------------------------------------------------------------

    def redis(self, core: int) -> tuple[Child, str]:
        if self.redis_binary is None:
            raise SystemExit("redis-server is not installed (the two-node cases need it)")
        port = free_port()
        child = self.child("redis-server", [
            self.redis_binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--protected-mode", "yes",
        ], core)  # fmt: skip
        child.wait_listening(port, 10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # it listens before it answers
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 1) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return child, f"redis://127.0.0.1:{port}/0"
            time.sleep(0.05)
        raise SystemExit(f"redis-server does not answer:\n{child.tail()}")

    def node(self, layout: Layout, index: int, redis_url: str, profile: bool) -> Node:
        if layout.server != "ssoio":
            return self.baseline(layout)
        port = free_port()
        name, letter = f"node {'AB'[index]}", "ab"[index]
        gc_file = self.dir / f"{layout.key}-node-{letter}-gc.json"
        argv = [sys.executable, str(HERE / "servers" / "ssoio_node.py"), "--port", str(port),
                "--issuer", ISSUER, "--jwks-uri", self.jwks_uri,
                "--gc-stats", str(gc_file)]  # fmt: skip
        if redis_url:
            argv += ["--cluster", redis_url, "--node-id", f"bench-node-{letter}"]
        profile_file = self.dir / f"{layout.key}-node-{letter}.prof" if profile else None
        if profile_file is not None:
            argv += ["--profile", str(profile_file)]
        child = self.child(name, argv, layout.node_cores[index])
        child.wait_listening(port)
        return Node(name, child, port, gc_file, profile_file)

    def baseline(self, layout: Layout) -> Node:
        """A baseline server as node A, with its fan-out room and emit route
        (``--fanout-room``); no GC statistics, no profile."""
        port = free_port()
        if layout.server == "node":
            argv = [node_binary(), str(NODE_SERVER)]
        else:
            argv = [sys.executable, str(HERE / "servers" / "bare.py")]
        argv += ["--port", str(port), "--fanout-room", ROOM]
        child = self.child(f"node A ({layout.key})", argv, layout.node_cores[0])
        child.wait_listening(port)
        return Node("node A", child, port, None, None)

    @contextlib.contextmanager
    def configuration(self, layout: Layout, profile: bool = False) -> Iterator[Running]:
        """Start redis-server (two nodes), the nodes and the load generators."""
        args = self.args
        started: list[Child] = []
        try:
            running = Running([], None, [], [])
            redis_url = ""
            if layout.nodes > 1:
                running.redis, redis_url = self.redis(layout.redis_core)
                started.append(running.redis)
            for index in range(layout.nodes):
                running.nodes.append(self.node(layout, index, redis_url, profile))
                started.append(running.nodes[-1].child)
            per = args.connections // args.loadgens
            rate = per / args.connect_spread if args.connect_spread else 0.0
            for k in range(args.loadgens):
                index = k % layout.nodes
                argv = [sys.executable, "-m", "benchmarks.fanout_clients",
                        "--port", str(running.nodes[index].port), "--key", str(self.key_file),
                        "--issuer", ISSUER, "--count", str(per), "--prefix", f"{layout.key}{k}",
                        "--tenant", TENANT, "--concurrency", str(args.concurrency),
                        "--timeout", str(args.timeout), "--stall", str(args.stall),
                        "--rate", str(rate)]  # fmt: skip
                client = self.child(f"clients {k}", argv, layout.client_cores[k % 2], talk=True)
                running.clients.append(client)
                running.client_node.append(index)
                started.append(client)
            yield running
        finally:
            for child in reversed(started):
                if child.proc.stdin is not None and child.proc.poll() is None:
                    with contextlib.suppress(OSError):
                        child.tell("quit")
                child.stop(grace=30)

    def run(self, layout: Layout, profile: bool = False) -> ConfigResult:
        """One configuration: connect, warm up, measure idle, then the paced mode (not when
        profiling) and the burst."""
        args = self.args
        pin(0, layout.driver_core)
        with self.configuration(layout, profile) as running:
            clients = running.clients
            ready = [client.answer(args.timeout) for client in clients]
            quiet_at = time.monotonic() + SESSION_TIMERS_S + 1.5
            limits = {"publisher (this driver)": open_files_limit(os.getpid())}
            for name, pid in running.processes().items():
                limits[name] = open_files_limit(pid)
            result = ConfigResult(
                layout, [r["connected"] for r in ready], sum(r["failures"] for r in ready),
                [e for r in ready for e in r["errors"]], [], limits, running.client_node,
            )  # fmt: skip
            connection = Publisher(running.nodes[0].port, self.api_token, args.timeout)
            # Warm-up: first requests, lazy imports, the Redis subscriptions of the nodes.
            for attempt in range(5):
                first = attempt * 100
                self.publish(connection, first, WARMUP_MESSAGES, 0.2)
                replies = self.drain(clients, first, WARMUP_MESSAGES, 30.0)
                missing = sum(r["missing"] for r in replies)
                result.warmup_missing.append(missing)
                if not missing:
                    break
                time.sleep(1.0)
            time.sleep(max(0.5, quiet_at - time.monotonic()))
            idle = snapshot(running.processes())
            time.sleep(args.idle)
            spent = snapshot_delta(idle, running.processes())
            result.idle_cpu = {name: cpu / spent.wall for name, cpu in spent.cpu.items()}
            if not profile:
                result.modes["paced"] = self.mode(
                    "paced", connection, running, PACED_FIRST, args.messages, args.interval
                )
            result.modes["burst"] = self.mode(
                "burst", connection, running, BURST_FIRST, args.burst, 0.0
            )
            for node in running.nodes:
                if node.profile is not None:
                    result.profiles[node.name] = node.profile
            connection.close()
        return result

    def publish(
        self, connection: Publisher, first: int, count: int, interval: float
    ) -> tuple[list[float], list[float]]:
        """Post messages ``first .. first+count-1``; their send times and round trips."""
        sent, rounds = [], []
        start = time.perf_counter()
        for n in range(count):
            if interval:
                delay = start + n * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            at, took = connection.emit(first + n)
            sent.append(at)
            rounds.append(took)
        return sent, rounds

    def drain(
        self, clients: Sequence[Child], first: int, count: int, limit: float
    ) -> list[dict[str, Any]]:
        for client in clients:
            client.tell(f"drain {first} {count} {limit}")
        return [client.answer(limit + 60) for client in clients]

    def mode(
        self, name: str, connection: Publisher, running: Running, first: int, count: int,
        interval: float,
    ) -> ModeResult:  # fmt: skip
        """Post, wait for every receipt, and account for it; the nodes time their cyclic GC
        (and run cProfile, when profiling) from SIGUSR1 to SIGUSR2 around the mode."""
        print(f"  {name}: {count} messages" + (f", one every {interval:g} s" if interval else
              ", back to back"), flush=True)  # fmt: skip
        processes = running.processes()
        signalled = [node for node in running.nodes if node.gc_file is not None]
        for node in signalled:  # a baseline has no such handler (uvicorn: exit; node: inspector)
            assert node.gc_file is not None
            node.gc_file.unlink(missing_ok=True)
            os.kill(node.child.pid, signal.SIGUSR1)
        before = snapshot(processes)
        sent, rounds = self.publish(connection, first, count, interval)
        replies = self.drain(running.clients, first, count, self.args.drain_timeout)
        time.sleep(0.1)  # the last writes' bookkeeping
        spent = snapshot_delta(before, processes)
        for node in signalled:
            os.kill(node.child.pid, signal.SIGUSR2)
        gc_stats = {node.name: node.gc_stats() for node in signalled}
        return ModeResult(
            name, count, sent, rounds, replies, spent.cpu, spent.busy, spent.wall, gc_stats
        )


@dataclass
class Node:
    name: str
    child: Child
    port: int
    gc_file: Path | None  # None: a baseline (no GC statistics)
    profile: Path | None

    def gc_stats(self, limit: float = 30.0) -> dict[str, Any]:
        """What the node wrote on SIGUSR2 (its cProfile stats, if any, are written first)."""
        assert self.gc_file is not None
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                stats: dict[str, Any] = json.loads(self.gc_file.read_text())
                return stats
            time.sleep(0.05)
        raise SystemExit(f"{self.name} wrote no GC statistics:\n{self.child.tail()}")


@dataclass
class Running:
    """One configuration's processes."""

    nodes: list[Node]
    redis: Child | None
    clients: list[Child]
    client_node: list[int]  # load generator -> node index

    def processes(self) -> dict[str, int]:
        """Every process to account for, by name."""
        named = {node.name: node.child.pid for node in self.nodes}
        if self.redis is not None:
            named["redis-server"] = self.redis.pid
        return named | {client.name: client.pid for client in self.clients}


class Publisher:
    """``POST /api/v1/emit`` to one node over one keep-alive HTTP connection."""

    def __init__(self, port: int, token: str, timeout: float) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.timeout = timeout
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def emit(self, message: int) -> tuple[float, float]:
        """Post message ``message`` to the room; (its time.time() stamp, round trip in s)."""
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            started = time.perf_counter()
            stamp = time.time()
            body = json.dumps({"room": ROOM, "event": EVENT, "data": {"i": message, "t": stamp}})
            try:
                self.connection.request("POST", "/api/v1/emit", body, self.headers)
                response = self.connection.getresponse()
                answer = response.read()
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout
                )
                if attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise SystemExit(f"POST /api/v1/emit: {response.status} {answer[:300]!r}")
            return stamp, time.perf_counter() - started
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def snapshot(processes: dict[str, int]) -> Snapshot:
    cores = range(os.cpu_count() or 1)
    return Snapshot(
        {name: cpu_seconds(pid) for name, pid in processes.items()},
        [core_busy_seconds(core) for core in cores],
        time.perf_counter(),
    )


def snapshot_delta(before: Snapshot, processes: dict[str, int]) -> Snapshot:
    """CPU seconds per process and busy share per core since ``before``."""
    now = snapshot(processes)
    wall = now.wall - before.wall
    return Snapshot(
        {name: now.cpu[name] - before.cpu[name] for name in processes},
        [(b - a) / wall if wall else 0.0 for a, b in zip(before.busy, now.busy, strict=True)],
        wall,
    )


# -- metrics ----------------------------------------------------------------------------------


def percentile_ms(ordered: Sequence[int], q: float) -> float | None:
    """Nearest-rank percentile of sorted µs values, in milliseconds."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] / 1000


def per_delivery_us(cpu: float | None, deliveries: int) -> float | None:
    return None if cpu is None or not deliveries else cpu / deliveries * 1e6


def mode_metrics(config: ConfigResult, mode: ModeResult) -> dict[str, float | None]:
    """The numbers of one mode of one configuration (latencies in ms, CPU in µs)."""
    by_node: dict[int, list[int]] = {}
    received: dict[int, int] = {}
    worst: dict[str, int] = {}
    for reply, node in zip(mode.replies, config.client_node, strict=True):
        received[node] = received.get(node, 0) + reply["received"]
        values = by_node.setdefault(node, [])
        for message, latencies in reply["latencies_us"].items():
            values.extend(latencies)
            if latencies:
                worst[message] = max(worst.get(message, 0), max(latencies))
    every = sorted(v for values in by_node.values() for v in values)
    for values in by_node.values():
        values.sort()
    total = sum(received.values())
    last = max((r["last_receipt"] for r in mode.replies if r["last_receipt"]), default=None)
    span = last - mode.sent[0] if last is not None and mode.sent else None
    complete = sorted(worst.values())
    rounds = sorted(round(s * 1e6) for s in mode.post_s)
    servers = [name for name in mode.cpu if name.startswith(("node", "redis"))]
    clients = [name for name in mode.cpu if name.startswith("clients")]
    m: dict[str, float | None] = {
        "p50": percentile_ms(every, 50),
        "p99": percentile_ms(every, 99),
        "max": percentile_ms(every, 100),
        "complete_p50": percentile_ms(complete, 50),
        "complete_max": percentile_ms(complete, 100),
        "post_p50": percentile_ms(rounds, 50),
        "rate": total / span if span else None,
        "messages_rate": mode.count / span if span else None,
        "received": total,
        "expected": sum(r["expected"] for r in mode.replies),
        "missing": sum(r["missing"] for r in mode.replies),
        "duplicates": sum(r["duplicates"] for r in mode.replies),
        "closed": sum(r["closed_connections"] for r in mode.replies),
        "all_cpu_us": per_delivery_us(sum(mode.cpu[n] for n in servers), total),
        "redis_cpu_us": per_delivery_us(mode.cpu.get("redis-server"), mode.count),
        "client_cpu_us": per_delivery_us(sum(mode.cpu[n] for n in clients), total),
    }
    for index, letter in enumerate("AB"):
        values = by_node.get(index, [])
        m[f"p50_{letter}"] = percentile_ms(values, 50)
        m[f"p99_{letter}"] = percentile_ms(values, 99)
        m[f"cpu_{letter}_us"] = per_delivery_us(
            mode.cpu.get(f"node {letter}"), received.get(index, 0)
        )
        gc_stats, cpu = mode.gc.get(f"node {letter}"), mode.cpu.get(f"node {letter}")
        if gc_stats is not None and cpu:
            m[f"gc_{letter}"] = sum(gc_stats["seconds"]) / cpu * 100
    for core, busy in enumerate(mode.busy):
        m[f"core{core}"] = busy * 100
    return m


def ratio(two: float | None, one: float | None) -> str:
    return "n/a" if two is None or not one else f"{two / one:.2f}x"


ROWS = (
    ("paced: delivery latency p50 (ms)", "paced", "p50", 1),
    ("paced: delivery latency p99 (ms)", "paced", "p99", 1),
    ("paced: delivery latency max (ms)", "paced", "max", 1),
    ("paced: latency p50, recipients on node A (ms)", "paced", "p50_A", 1),
    ("paced: latency p99, recipients on node A (ms)", "paced", "p99_A", 1),
    ("paced: latency p50, recipients on node B, via Redis (ms)", "paced", "p50_B", 1),
    ("paced: latency p99, recipients on node B, via Redis (ms)", "paced", "p99_B", 1),
    ("paced: until every recipient has a message, p50 (ms)", "paced", "complete_p50", 1),
    ("paced: until every recipient has a message, max (ms)", "paced", "complete_max", 1),
    ("paced: POST /api/v1/emit round trip p50 (ms)", "paced", "post_p50", 1),
    ("paced: server CPU per delivery, node A (µs)", "paced", "cpu_A_us", 1),
    ("paced: server CPU per delivery, node B (µs)", "paced", "cpu_B_us", 1),
    ("paced: server CPU per delivery, nodes + redis-server (µs)", "paced", "all_cpu_us", 1),
    ("paced: cyclic GC, share of node A's CPU (%)", "paced", "gc_A", 1),
    ("paced: cyclic GC, share of node B's CPU (%)", "paced", "gc_B", 1),
    ("paced: load generator CPU per delivery (µs)", "paced", "client_cpu_us", 1),
    ("paced: core 0 busy (%)", "paced", "core0", 0),
    ("paced: core 1 busy (%)", "paced", "core1", 0),
    ("burst: deliveries/s (first POST to last receipt)", "burst", "rate", 0),
    ("burst: messages/s fully fanned out", "burst", "messages_rate", 2),
    ("burst: delivery latency p50 (ms)", "burst", "p50", 0),
    ("burst: delivery latency p99 (ms)", "burst", "p99", 0),
    ("burst: POST /api/v1/emit round trip p50 (ms)", "burst", "post_p50", 1),
    ("burst: server CPU per delivery, node A (µs)", "burst", "cpu_A_us", 1),
    ("burst: server CPU per delivery, node B (µs)", "burst", "cpu_B_us", 1),
    ("burst: server CPU per delivery, nodes + redis-server (µs)", "burst", "all_cpu_us", 1),
    ("burst: cyclic GC, share of node A's CPU (%)", "burst", "gc_A", 1),
    ("burst: cyclic GC, share of node B's CPU (%)", "burst", "gc_B", 1),
    ("burst: redis-server CPU per message (µs)", "burst", "redis_cpu_us", 0),
    ("burst: load generator CPU per delivery (µs)", "burst", "client_cpu_us", 1),
    ("burst: core 0 busy (%)", "burst", "core0", 0),
    ("burst: core 1 busy (%)", "burst", "core1", 0),
)


# the rows where ssoio is divided by each baseline: CPU per delivery, rates, latencies
COMPARED = frozenset({
    "p50", "p99", "max", "p50_A", "p99_A", "complete_p50", "complete_max", "post_p50",
    "cpu_A_us", "all_cpu_us", "rate", "messages_rate",
})  # fmt: skip
ORDER = ("single", "bare", "node", "shared", "spread")  # the report's columns


def column(results: dict[str, ConfigResult], k: str) -> str:
    label = results[k].layout.label
    return f"{label} (ssoio)" if k == "single" and results.keys() & BASELINES else label


def report(
    args: argparse.Namespace,
    results: dict[str, ConfigResult],
    profiles: list[str],
    seconds: float,
) -> str:
    keys = [k for k in ORDER if k in results]
    two = [k for k in keys if results[k].layout.nodes > 1]
    bases = [k for k in BASELINES if k in results and "single" in results]
    m = {k: {name: mode_metrics(results[k], mode) for name, mode in results[k].modes.items()}
         for k in keys}  # fmt: skip
    per = args.connections // args.loadgens
    titles = [f"ssoio / {k}" for k in bases] + [
        f"{results[k].layout.label} / single node" for k in two
    ]
    baselines = " and ".join(BASELINES[k].label for k in BASELINES if k in results)
    lines = [
        "# Fan-out benchmark: one message to every connection of a room, one node and two"
        + (f"; {baselines} on one node beside it" if baselines else ""),
        "",
        f"- machine: {machine_line()}",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; run time {seconds:.0f} s; "
        f"{redis_version()}",
        f"- {args.connections:,} authenticated connections (a distinct RS256 access token "
        f"each, all of tenant `{TENANT}`, so all auto-joined to `{ROOM}`), from "
        f"{args.loadgens} load-generator processes of {per:,}; with two nodes, half on each; "
        f"the connects spread over {args.connect_spread:g} s (so the nodes' Engine.IO pings "
        "are even), measuring starts once their session timers have fired",
        f"- publisher: `POST /api/v1/emit` to node A only (bearer token of scope "
        f"`ssoio:emit`), event `{EVENT}` with `{{i, t}}` where `t` is `time.time()` before "
        "the request; latency = the recipient's `time.time()` at receipt minus `t`",
        f"- paced: {args.messages} messages, one every {args.interval:g} s; burst: "
        f"{args.burst} messages, each posted as soon as the previous POST answered; each "
        f"after a warm-up of {WARMUP_MESSAGES} messages",
        "- CPU per delivery: the process's utime + stime delta over the mode "
        "(`/proc/PID/stat`) divided by the deliveries to its own connections (node A's "
        "includes the HTTP request and the publish to Redis); core busy shares from "
        "`/proc/stat`",
    ]  # fmt: skip
    if baselines:
        lines.append(
            f"- baselines, one node each, in the same run, each on fresh processes, pinned as "
            f"the single ssoio node is, with the same load generators, publisher, modes and "
            f"checks: {baselines} (see Setup); they ignore the CONNECT's token and the "
            f"bearer token, join every connection to `{ROOM}` as it connects and emit the "
            "POST's event to the room; `ssoio / X` is ssoio's single-node figure divided by "
            "X's, on the CPU per delivery, rate and latency rows"
        )
    lines += [
        "",
        "| metric | " + " | ".join(column(results, k) for k in keys) + " |"
        + "".join(f" {title} |" for title in titles),
        "| --- |" + " ---: |" * (len(keys) + len(titles)),
    ]  # fmt: skip
    for label, mode, key, digits in ROWS:
        values = {k: m[k].get(mode, {}).get(key) for k in keys}
        if all(v is None for v in values.values()):
            continue
        row = f"| {label} | " + " | ".join(fmt(values[k], digits) for k in keys) + " |"
        one = values.get("single")
        for k in bases:
            row += f" {ratio(one, values[k]) if key in COMPARED else ''} |"
        row += "".join(f" {ratio(values[k], one)} |" for k in two)
        lines.append(row)
    blank = " |" * len(titles)

    def text_row(label: str, cell: Callable[[str], str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(k) for k in keys) + " |" + blank)

    def held(k: str) -> str:
        r = results[k]
        nodes = [sum(n for n, i in zip(r.connected, r.client_node, strict=True) if i == index)
                 for index in range(r.layout.nodes)]  # fmt: skip
        return " + ".join(f"{n:,}" for n in nodes)

    def completeness(key: str) -> Callable[[str], str]:
        def cell(k: str) -> str:
            return " / ".join(
                f"{m[k][mode][key]:,.0f}" if mode in m[k] else "n/a" for mode in ("paced", "burst")
            )

        return cell

    text_row("connections held (node A + node B)", held)

    def collections(k: str) -> str:
        return (
            "; ".join(
                f"{mode}: "
                + ", ".join(
                    f"{node[-1]} " + "/".join(str(n) for n in stats["collections"])
                    for node, stats in results[k].modes[mode].gc.items()
                )
                for mode in results[k].modes
                if results[k].modes[mode].gc
            )
            or "n/a"
        )

    text_row("cyclic GC collections, gen 0/1/2, per node", collections)
    text_row("connect failures", lambda k: f"{results[k].connect_failures:,}")
    text_row("receipts expected, paced / burst", completeness("expected"))
    text_row("receipts missing, paced / burst", completeness("missing"))
    text_row("duplicate receipts, paced / burst", completeness("duplicates"))
    text_row("connections closed during the run", lambda k: " / ".join(
        f"{m[k][mode]['closed']:,.0f}" for mode in m[k]))  # fmt: skip
    text_row("warm-up receipts missing, by attempt",
             lambda k: ", ".join(f"{n:,}" for n in results[k].warmup_missing))  # fmt: skip
    text_row("CPU share while idle (pings only), node A / node B (%)", lambda k: " / ".join(
        fmt(results[k].idle_cpu.get(n, 0.0) * 100, 1) for n in ("node A", "node B")
        if n in results[k].idle_cpu))  # fmt: skip
    if "single" in results:
        lines += targets_block(m, bases, keys)
    lines += ["", "## Pinning and limits", ""]
    for k in keys:
        lines.append(f"- {results[k].layout.label}: {results[k].layout.describe()}")
    limits = {value for r in results.values() for value in r.limits.values()}
    lines.append(
        "- `RLIMIT_NOFILE` (soft/hard, read back from `/proc/PID/limits` of the driver, every "
        f"node, redis-server and load generator): {', '.join(sorted(limits))}"
    )
    errors = [f"- {k}: {e}" for k in keys for e in results[k].connect_errors]
    if errors:
        lines += ["", "## Connect errors", "", *errors]
    lines += ["", "## Setup", "", *SETUP.splitlines()]
    if bases:
        lines += BASELINE_SETUP.format(ws=uvicorn_auto_ws(), room=ROOM).splitlines()
    if profiles:
        lines += ["", *profiles]
    return "\n".join(lines) + "\n"


def receipts_clean(metrics: dict[str, dict[str, float | None]]) -> bool:
    """No receipt missing and none duplicated, in every mode."""
    return all(not mode.get("missing") and not mode.get("duplicates") for mode in metrics.values())


def targets_block(
    m: dict[str, dict[str, dict[str, float | None]]], bases: list[str], keys: list[str]
) -> list[str]:
    """Issue #19's targets for ssoio on one node, the baselines' values beside them, and
    the receipts check of every configuration."""
    names = {k: BASELINES[k].label for k in bases}
    lines = ["", "## Targets (issue #19, ssoio on one node)", "",
             "| target | ssoio, single node | " + "".join(f"{names[k]} | " for k in bases)
             + "met |",
             "| --- | ---: |" + " ---: |" * len(bases) + " --- |"]  # fmt: skip
    for target in TARGETS:
        ours = m["single"].get(target.phase, {}).get(target.metric)
        theirs = "".join(
            f"{fmt(m[k].get(target.phase, {}).get(target.metric), 1)} | " for k in bases
        )
        met = "yes" if target.met(ours) else "**no**"
        lines.append(f"| {target.describe()} | {fmt(ours, 1)} | {theirs}{met} |")
    dirty = [k for k in keys if not receipts_clean(m[k])]
    lines += ["", "Receipts missing and duplicated: 0 in every mode of every configuration: "
              + ("yes" if not dirty else f"**no** ({', '.join(dirty)})")]  # fmt: skip
    return lines


SETUP = """\
- nodes: `servers/ssoio_node.py` (as `ssoio serve` runs it: websockets-sansio, no
  permessage-deflate, ssoio's GC thresholds, WARNING logging; the realtime benchmark's
  configuration, whose rooms `user:{sub}` and `tenant:{tenant}` are auto-joined); with two
  nodes, `--cluster redis://...` adds `[cluster] redis_url` (and a `node_id`) to the same
  configuration. The room has no field visibility rules, so `Gateway.deliver` hands the
  event to python-socketio's manager: locally ssoio's `FanOut.emit` (the frame built once,
  written to each open WebSocket by the emitting coroutine: no task per recipient), and
  with a cluster python-socketio's `AsyncRedisManager.emit` as ssoio adapts it, which
  starts the publish on Redis, delivers to node A's own members, and node B's listener
  delivers it to its members.
- redis-server: a fresh one per two-node configuration on a free loopback port, no
  persistence (`--save "" --appendonly no`), as `tests/interop/redis_server.py` starts it.
- load generators: `fanout_clients.py` on `loadgen.py`'s client (a plain `websockets`
  Socket.IO client, websocket transport only, no permessage-deflate offered, Engine.IO
  pings answered); a task per connection reads and timestamps every message. Latencies
  therefore include the load generator's own queueing when it is busy (see the core busy
  shares).
- the JWKS is served by `python -m http.server` on core 1; the publisher is this driver
  (one keep-alive HTTP connection).
- cyclic GC: each node (`ssoio_node.py --gc-stats`) adds up the process CPU time of its
  garbage collections (`gc.callbacks`) over each mode; ssoio's thresholds are
  `(50000, 20, 100)` (`tune_garbage_collector`)."""


BASELINE_SETUP = """\
- bare python-socketio (`servers/bare.py --fanout-room {room}`, otherwise as the
  realtime benchmark runs it): `socketio.AsyncServer(async_mode="asgi")` in
  `socketio.ASGIApp`, run by `uvicorn.run(app, host="127.0.0.1", port=N)` with every
  uvicorn default (websocket implementation "auto" = {ws}, INFO logging with
  the access log on, written to a file), the default garbage collector, no
  authentication. `--fanout-room` adds a `connect` handler that enters every connection
  into the room and, in front of the ASGI app, `POST /api/v1/emit` doing
  `await sio.emit(event, data, to=room)` (python-socketio's `AsyncManager.emit`: the
  packet encoded once, a task per recipient) and answering `{{"ok": true}}`.
- Node socket.io 4.8 (`servers/node_socketio.mjs --fanout-room {room}`, socket.io
  pinned by `servers/package-lock.json`, `npm ci` on first use): `new
  Server(httpServer)` with every default, no authentication; `--fanout-room` adds
  `socket.join(room)` on connection and the HTTP server's own request listener for
  `POST /api/v1/emit`, doing `io.to(room).emit(event, data)` and answering
  `{{"ok": true}}`.
- the baselines have no GC statistics (n/a) and are not profiled."""


def redis_version() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        return "redis-server not installed"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        match = re.search(r"v=(\S+)", out.stdout)
        if match:
            return f"redis-server {match.group(1)}"
    return "redis-server (version unknown)"


# -- profiles ---------------------------------------------------------------------------------

# python-socketio's and ssoio's steps of a fan-out, whose inclusive time is listed.
STEPS = (
    ("ssoio/web/api.py", "emit", "the POST /api/v1/emit handler"),
    ("socketio/async_pubsub_manager.py", "emit", "AsyncPubSubManager.emit (A: publish + local)"),
    ("socketio/async_redis_manager.py", "_publish", "AsyncRedisManager._publish (A)"),
    ("socketio/async_pubsub_manager.py", "_handle_emit", "AsyncPubSubManager._handle_emit"),
    ("socketio/async_manager.py", "emit", "AsyncManager.emit (stock: a task per recipient)"),
    ("ssoio/transport/manager.py", "emit", "FanOut.emit (the packet encoded once)"),
    ("ssoio/transport/server.py", "send_at_once", "SocketServer.send_at_once (per recipient)"),
    ("ssoio/transport/engine.py", "frame_of", "EngineServer.frame_of (the frame built once)"),
    ("ssoio/transport/websocket.py", "write_frame", "WebSocketProtocol.write_frame"),
    ("socketio/async_server.py", "_send_eio_packet", "AsyncServer._send_eio_packet (queued)"),
    ("engineio/async_socket.py", "send", "engineio AsyncSocket.send (queue)"),
    ("ssoio/transport/engine.py", "_write", "EngineSocket._write (websocket sends)"),
)


def profile_lines(stats_file: Path, limit: int, deliveries: int) -> list[str]:
    entries, total = load_profile(stats_file)
    lines = package_table(entries, total, 10)
    lines += ["", "Inclusive time of the fan-out's steps:", "",
              "| step | share | profiled µs per delivery |",
              "| --- | ---: | ---: |"]  # fmt: skip
    for path, function, label in STEPS:
        for (filename, _line, name), entry in entries.items():
            if name == function and where(filename).endswith(path) and entry[1]:
                lines.append(f"| {label} | {entry[3] / total:.1%} | "
                             f"{entry[3] / max(deliveries, 1) * 1e6:,.1f} |")  # fmt: skip
    title = f"Top {limit} functions by own time (a coroutine's calls count its resumptions):"
    return [*lines, "", *top_table(entries, total, limit, title)]


def profile_section(bench: Bench, limit: int) -> list[str]:
    lines = [
        "## Where the nodes' time goes (cProfile, burst mode)",
        "",
        "Separate passes, the single node and two nodes both on core 0, with every node under",
        "cProfile, switched on and off around the burst only (its overhead inflates",
        "Python-level calls; the shares are what matters).",
    ]
    for key in ("single", "shared"):
        layout = LAYOUTS[key]
        print(f"profiling: {layout.label}, burst, under cProfile ...", flush=True)
        result = bench.run(layout, profile=True)
        burst = result.modes["burst"]
        m = mode_metrics(result, burst)
        cpu = " / ".join(fmt(m[f"cpu_{'AB'[i]}_us"], 1) for i in range(layout.nodes))
        lines += ["", f"### {layout.label}: {fmt(m['rate'])} deliveries/s profiled, {cpu} µs "
                  f"CPU per delivery (node {' / '.join('AB'[: layout.nodes])}), "
                  f"{fmt(m['missing'])} receipts missing"]  # fmt: skip
        received = [0] * layout.nodes
        for reply, node in zip(burst.replies, result.client_node, strict=True):
            received[node] += reply["received"]
        for index in range(layout.nodes):
            name = f"node {'AB'[index]}"
            stats_file = result.profiles.get(name)
            lines += ["", f"#### {layout.label}, {name} ({received[index]:,} deliveries to its "
                      "own connections)", ""]  # fmt: skip
            if stats_file is None or not stats_file.exists():
                lines.append("No profile written.")
                continue
            lines += profile_lines(stats_file, limit, received[index])
    return lines


def much_slower(results: dict[str, ConfigResult]) -> bool:
    """A two-node configuration delivering under 80 % of the single node's rate, or with a
    paced p50 latency over 1.5 times the single node's."""
    if "single" not in results:
        return False
    one = {name: mode_metrics(results["single"], mode) for name, mode in
           results["single"].modes.items()}  # fmt: skip
    for result in results.values():
        if result.layout.nodes < 2:
            continue
        two = {name: mode_metrics(result, mode) for name, mode in result.modes.items()}
        rate_one, rate_two = one["burst"]["rate"], two["burst"]["rate"]
        p50_one, p50_two = one["paced"]["p50"], two["paced"]["p50"]
        if rate_one and rate_two is not None and rate_two < 0.8 * rate_one:
            return True
        if p50_one and p50_two is not None and p50_two > 1.5 * p50_one:
            return True
    return False


# -- main -------------------------------------------------------------------------------------


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit("interrupted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=5000, help="in the room, in all")
    parser.add_argument("--loadgens", type=int, default=2, help="load-generator processes")
    parser.add_argument("--concurrency", type=int, default=50, help="connects in flight, each")
    parser.add_argument("--messages", type=int, default=50, help="paced messages")
    parser.add_argument(
        "--interval", type=float, default=0.5,
        help="between paced messages (s); at 0.2 s one node is saturated by 5,000 recipients",
    )  # fmt: skip
    parser.add_argument("--burst", type=int, default=50, help="messages posted back to back")
    parser.add_argument("--layouts", default="single,shared,spread",
                        help=f"configurations to run, of {', '.join(LAYOUTS)}")  # fmt: skip
    parser.add_argument("--idle", type=float, default=5.0, help="idle CPU measured over (s)")
    parser.add_argument(
        "--connect-spread", type=float, default=25.0,
        help="spread the connects over this long (s; 0: as fast as possible); over one "
        "Engine.IO ping interval (25 s), the pings are even, not one burst every 25 s",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=300.0, help="bound of the connects")
    parser.add_argument(
        "--drain-timeout", type=float, default=180.0,
        help="bound of the wait for every receipt after a mode's last POST (s)",
    )  # fmt: skip
    parser.add_argument(
        "--stall", type=float, default=15.0,
        help="stop waiting when no receipt arrives for this long (s)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", choices=["auto", "always", "never"], default="auto",
        help="profile two nodes: when much slower than one, always or never",
    )  # fmt: skip
    parser.add_argument("--profile-top", type=int, default=20, help="functions listed")
    parser.add_argument("--no-bare", action="store_true",
                        help="leave out the bare python-socketio baseline")  # fmt: skip
    parser.add_argument("--no-node", action="store_true",
                        help="leave out the Node socket.io 4.8 baseline")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS, help="report file")
    args = parser.parse_args()
    layouts = [key.strip() for key in args.layouts.split(",") if key.strip()]
    unknown = [key for key in layouts if key not in LAYOUTS]
    if unknown or not layouts:
        parser.error(f"--layouts: unknown {unknown}; choose from {', '.join(LAYOUTS)}")
    if args.loadgens < 2 or args.loadgens % 2 or args.connections % args.loadgens:
        parser.error("--loadgens: an even number (>= 2) that divides --connections")

    signal.signal(signal.SIGTERM, _terminate)
    soft, hard = raise_file_limit()
    started = time.perf_counter()
    print(f"machine: {machine_line()}; RLIMIT_NOFILE {soft}/{hard}", flush=True)
    baselines = [] if "single" not in layouts else [
        key for key in BASELINES if not getattr(args, f"no_{key}")
    ]  # fmt: skip
    if "node" in baselines:
        install_node_server()
    with contextlib.ExitStack() as stack:
        bench = Bench(args, stack)
        results: dict[str, ConfigResult] = {}
        for key in layouts:
            # the baselines first, then ssoio, as the realtime benchmark runs them
            for layout in [BASELINES[b] for b in baselines] if key == "single" else []:
                print(f"{layout.label} (baseline) ...", flush=True)
                results[layout.key] = bench.run(layout)
            print(f"{LAYOUTS[key].label} ...", flush=True)
            results[key] = bench.run(LAYOUTS[key])
        profiles: list[str] = []
        if args.profile == "always" or (args.profile == "auto" and much_slower(results)):
            profiles = profile_section(bench, args.profile_top)
        text = report(args, results, profiles, time.perf_counter() - started)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print()
    print(text, end="")


if __name__ == "__main__":
    main()
