"""An ssoio node as ``ssoio serve`` runs it, with one embedded guarded ``echo`` handler
and the configured relay event ``chat:send``.

The configuration trusts one issuer whose keys come from ``--jwks-uri`` (so discovery is
skipped), accepts only RFC 9068 access tokens (``typ: at+jwt``) for audience
``bench-api``, maps claims with the keycloak preset plus a ``tenant`` attribute, and
auto-joins every connection to ``user:{sub}`` and ``tenant:{tenant}`` as the reference
policy does. ``echo {n: integer}`` requires ``authenticated``, so every event passes the
whole guard: connection lookup, both rate limits, payload shape, token lifetime, the
event rule, then the handler, whose result is merged into the ack ``{"ok": true, "n": n}``.
``chat:send {room, text, note}`` is the reference configuration's relay (``scope:chat``,
publish on a ``tenant:{tenant}:*`` room, joined with the built-in ``room:join``), relayed as
``chat:message`` with ``from``, its ``note`` visible to ``role:staff`` only.

Deviations from the defaults, all because every benchmark client comes from 127.0.0.1:
``limits.connects_per_ip``, ``limits.events_per_connection`` and ``limits.events_per_user``
are raised to rate 100000 / burst 100000, and ``realtime.max_unauthenticated_per_ip`` to
100000 (the connect storm has up to 50 Engine.IO sessions from one address waiting for
their authenticated connect at once; the default allows 20), and
``server.max_connections_per_address`` and ``server.max_partial_heads_per_address`` to
1000000 (the fan-out holds 5,000 connections from 127.0.0.1). Logging is at WARNING so the
per-connect audit lines cost no I/O. The process is otherwise set up as ``ssoio serve``
does: ``tune_garbage_collector()`` and ``uvicorn_config(...)``.

``--cluster REDIS_URL`` (off by default) sets ``[cluster] redis_url`` (and ``--node-id``
its ``node_id``), plus the ``login.session_secret`` a cluster requires (a fixed benchmark
value, the same on every node): the node joins a cluster over that Redis, as every node
of a deployment with the same configuration does (``benchmarks/fanout.py`` runs two).

``--profile FILE`` adds cProfile, switched on by SIGUSR1 and off by SIGUSR2, which also
writes the stats to FILE: the load generator sends them at a phase's start and end, so
start-up, warm-up and teardown stay out of the profile. ``--gc-stats FILE`` times the
cyclic garbage collector between the same signals (``gc.callbacks``, process CPU time)
and writes the seconds and collections per generation to FILE as JSON on SIGUSR2.

Run (``benchmarks/realtime.py`` does): ``.venv/bin/python benchmarks/servers/ssoio_node.py
--port N --issuer URL --jwks-uri URL``
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import uvicorn

from ssoio.app import SsoServer
from ssoio.policy.principal import Principal
from ssoio.process import tune_garbage_collector
from ssoio.serving import configure_logging, uvicorn_config
from ssoio.settings import validate_raw

AUDIENCE = "bench-api"
HIGH = {"rate": 100_000, "burst": 100_000}
# Every node of a cluster signs cookies and encrypts shared sessions with the same secret,
# which a cluster's configuration therefore requires; this one is for benchmarks only.
CLUSTER_SESSION_SECRET = "benchmark-only-cluster-session-secret-0123456789"
# The reference configuration's relay event (config/ssoio.example.toml), plus a `note` field
# only staff receive (like tests/interop/cluster_nodes.py's `note:send`), so a room with a
# non-staff member gets two views of each message: field visibility applies.
CHAT_SEND: dict[str, Any] = {
    "requires": "scope:chat",
    "fields": {
        "room": "room",
        "text": {"type": "string", "max_length": 2000},
        "note": {"type": "string", "max_length": 2000},
    },
    "room_field": "room",
    "deliver_as": "chat:message",
    "visible": {"note": "role:staff"},
}


def settings_document(
    port: int, issuer: str, jwks_uri: str, redis_url: str = "", node_id: str = ""
) -> dict[str, Any]:
    """The benchmark node's configuration, as a parsed TOML document (with a ``[cluster]``
    table when ``redis_url`` is given)."""
    document: dict[str, Any] = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "max_connections_per_address": 1_000_000,
            "max_partial_heads_per_address": 1_000_000,
        },
        "realtime": {"max_unauthenticated_per_ip": 100_000},
        "limits": {
            "connects_per_ip": HIGH,
            "events_per_connection": HIGH,
            "events_per_user": HIGH,
        },
        "issuers": [
            {
                "name": "bench",
                "issuer": issuer,
                "jwks_uri": jwks_uri,
                "audiences": [AUDIENCE],
                "token_types": ["at+jwt"],
                "claims": {"preset": "keycloak", "attributes": {"tenant": "tenant"}},
            }
        ],
        "rooms": [
            {"pattern": "user:{sub}", "join": "authenticated", "auto_join": True},
            {"pattern": "tenant:{tenant}", "join": "authenticated", "auto_join": True},
            {"pattern": "tenant:{tenant}:*", "join": "authenticated", "publish": "authenticated"},
        ],
        "events": {"chat:send": CHAT_SEND},
    }
    if redis_url:
        document["cluster"] = {"redis_url": redis_url, "node_id": node_id}
        document["login"] = {"session_secret": CLUSTER_SESSION_SECRET}
    return document


def build(
    port: int, issuer: str, jwks_uri: str, redis_url: str = "", node_id: str = "",
    transport: str = "ssoio", recovery: bool = False,
) -> SsoServer:  # fmt: skip
    """The node, with the guarded ``echo`` handler registered; ``transport`` is
    ``server.transport`` (``"stock"``: python-socketio's, python-engineio's and uvicorn's
    own classes, ssoio.transport.gates)."""
    document = settings_document(port, issuer, jwks_uri, redis_url, node_id)
    document["server"]["transport"] = transport
    if recovery:
        document["recovery"] = {"enabled": True}
    sso = SsoServer(validate_raw(document, {}))

    @sso.on("echo", requires="authenticated", fields={"n": "integer"})
    async def echo(_principal: Principal, payload: dict[str, Any]) -> Mapping[str, Any]:
        return {"n": payload["n"]}

    return sso


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True, help="the tokens' iss, exactly")
    parser.add_argument("--jwks-uri", required=True, help="where the issuer's JWKS is served")
    parser.add_argument(
        "--cluster", metavar="REDIS_URL", default="", help="join a cluster over this Redis"
    )
    parser.add_argument("--node-id", default="", help="[cluster] node_id (default: host-pid)")
    parser.add_argument(
        "--recovery", action="store_true", help="[recovery] enabled (connection state recovery)"
    )
    parser.add_argument(
        "--transport", choices=["ssoio", "stock"], default="ssoio", help="server.transport"
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile between SIGUSR1 and SIGUSR2, stats to FILE"
    )
    parser.add_argument(
        "--gc-stats", metavar="FILE", help="time the cyclic GC between SIGUSR1 and SIGUSR2"
    )
    args = parser.parse_args()

    configure_logging(level=logging.WARNING)
    tune_garbage_collector()
    sso = build(args.port, args.issuer, args.jwks_uri, args.cluster, args.node_id, args.transport,
                args.recovery)  # fmt: skip
    starts: list[Callable[[], None]] = []
    stops: list[Callable[[], None]] = []
    if args.profile is not None:
        profile_on_signals(args.profile, starts, stops)
    if args.gc_stats is not None:
        gc_timer = GcTimer(args.gc_stats)
        starts.append(gc_timer.start)
        stops.append(gc_timer.stop)
    if starts:
        on_signals(starts, stops)
    uvicorn.Server(uvicorn_config(sso, "127.0.0.1", args.port)).run()


def on_signals(starts: list[Callable[[], None]], stops: list[Callable[[], None]]) -> None:
    """SIGUSR1 runs every ``starts`` action, SIGUSR2 every ``stops`` one."""

    def start(_signum: int, _frame: FrameType | None) -> None:
        for action in starts:
            action()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        for action in stops:
            action()

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


def profile_on_signals(
    path: str, starts: list[Callable[[], None]], stops: list[Callable[[], None]]
) -> None:
    """Start cProfile on SIGUSR1; on SIGUSR2 stop it and write the stats to ``path``."""
    profiler = cProfile.Profile()

    def stop() -> None:
        profiler.disable()
        profiler.dump_stats(path)

    starts.append(profiler.enable)
    stops.append(stop)


class GcTimer:
    """Process CPU time spent in the cyclic garbage collector, per generation."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.on = False
        self.began = 0.0
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        gc.callbacks.append(self.callback)

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if not self.on:
            return
        if phase == "start":
            self.began = time.process_time()
        else:
            generation = info["generation"]
            self.seconds[generation] += time.process_time() - self.began
            self.collections[generation] += 1

    def start(self) -> None:
        self.seconds, self.collections, self.on = [0.0, 0.0, 0.0], [0, 0, 0], True

    def stop(self) -> None:
        """Stop timing; write ``{"seconds": [...], "collections": [...]}`` (atomically)."""
        self.on = False
        report = {"seconds": self.seconds, "collections": self.collections,
                  "threshold": gc.get_threshold()}  # fmt: skip
        partial = f"{self.path}.partial"
        with open(partial, "w") as out:
            json.dump(report, out)
        os.replace(partial, self.path)


if __name__ == "__main__":
    main()
