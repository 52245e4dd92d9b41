"""The soak run's ssoio node: ``config/ssoio.example.toml`` pointed at a real OpenID
Provider, run as ``ssoio serve`` runs it, plus a debug endpoint of this wrapper only.

The example configuration is read as a user would deploy it (``SSOIO_ISSUER``,
``SSOIO_AUDIENCE``, ``SSOIO_CLIENT_ID``, ``SSOIO_CLIENT_SECRET``, ``SSOIO_HOST``,
``SSOIO_PORT``, ``SSOIO_PUBLIC_URL`` given through the interpolation environment), with
these deviations, because every soak client comes from 127.0.0.1 and shares five users:

* ``limits.connects_per_ip`` and ``limits.failed_auth_per_ip``: rate/burst ``--ip-limit``
  (the hostile clients' failed authentications would otherwise lock the valid ones out);
* ``realtime.max_unauthenticated_per_ip``, ``server.max_connections_per_address`` and
  ``server.max_partial_heads_per_address``: ``--ip-limit``;
* ``limits.events_per_user``: rate ``--user-events`` / burst twice that (hundreds of
  connections per user at once; the per-connection limit stays at its default);
* ``realtime.expiry_warning_s``: ``--expiry-warning`` (short-lived tokens);
* ``logging.level``: ``--log-level`` (default warning: one audit line per connect and
  event is I/O the soak does not measure); ``logging.format``: ``--log-format``.

Debug endpoint (this wrapper only, never part of ssoio):

* ``GET /__soak/stats``: JSON with the process's RSS and the size of every internal map
  (gateway, scheduler, rate limiters, token cache, browser sessions, python-socketio's
  manager and server, python-engineio's sockets, asyncio tasks, GC-tracked objects);
* ``POST /__soak/gc``: a full garbage collection (and ``malloc_trim``), then the same JSON
  (with ``--tracemalloc``: plus the allocation sites grown since the first such call);
* ``GET /__soak/timer``: whether the gateway's timer loop runs, and the awaits it is in;
* ``GET /__soak/sessions``: python-engineio's sockets and their queues, one by one.

Run (``benchmarks/soak.py`` does): ``.venv/bin/python benchmarks/servers/soak_node.py
--port N --issuer URL``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import time
import tomllib
import tracemalloc
from collections.abc import Sized
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from ssoio.app import SsoServer
from ssoio.process import tune_garbage_collector
from ssoio.serving import configure_logging, uvicorn_config
from ssoio.settings import validate_raw

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "ssoio.example.toml"
AUDIENCE = "ssoio-api"
CLIENT_ID = "ssoio-web"
CLIENT_SECRET = "ssoio-web-secret"
DEBUG_PREFIX = "/__soak/"


def settings_document(args: argparse.Namespace) -> dict[str, Any]:
    """The example configuration, parsed, with the soak's deviations applied."""
    doc = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    ip_limit = {"rate": args.ip_limit, "burst": args.ip_limit}
    doc["limits"]["connects_per_ip"] = ip_limit
    doc["limits"]["failed_auth_per_ip"] = ip_limit
    doc["limits"]["events_per_user"] = {"rate": args.user_events, "burst": 2 * args.user_events}
    doc["realtime"]["max_unauthenticated_per_ip"] = args.ip_limit
    doc["server"]["max_connections_per_address"] = args.ip_limit
    doc["server"]["max_partial_heads_per_address"] = args.ip_limit
    doc["realtime"]["expiry_warning_s"] = args.expiry_warning
    doc["logging"]["level"] = args.log_level
    doc["logging"]["format"] = args.log_format
    return doc


def environment(args: argparse.Namespace) -> dict[str, str]:
    return {
        "SSOIO_ISSUER": args.issuer,
        "SSOIO_AUDIENCE": AUDIENCE,
        "SSOIO_CLIENT_ID": CLIENT_ID,
        "SSOIO_CLIENT_SECRET": CLIENT_SECRET,
        "SSOIO_HOST": "127.0.0.1",
        "SSOIO_PORT": str(args.port),
        "SSOIO_PUBLIC_URL": f"http://127.0.0.1:{args.port}",
    }


def status_kib() -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of this process, KiB."""
    values: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def size(value: object) -> int:
    return len(value) if isinstance(value, Sized) else -1


def stats(sso: SsoServer) -> dict[str, Any]:
    """Every internal map's size, and the process's memory."""
    gateway, sio = sso.gateway, sso.sio
    manager = sio.manager
    heap = list(gateway.scheduler._heap)
    now = time.time()
    cache = sso.providers.verifier._cache
    unexpired = sum(1 for v, _ in list(cache.values()) if now <= v.expires_at + v.issuer.leeway_s)
    rooms: dict[Any, dict[Any, Any]] = manager.rooms
    store = sso.login.store if sso.login is not None else None
    memory = status_kib()
    return {
        "rss_kib": memory.get("VmRSS", 0),
        "hwm_kib": memory.get("VmHWM", 0),
        **{f"gateway.{k}": v for k, v in gateway.connections.sizes().items()},
        "gateway.unauthenticated": gateway.unauthenticated_sessions,
        "gateway.unauthenticated_ips": gateway.pending.addresses,
        "scheduler.heap": len(heap),
        "scheduler.overdue": sum(1 for due in heap if due.when < now - 2),
        "scheduler.live": sum(1 for due in heap if gateway.timers.live_entry(due)),
        "limiter.connects_per_ip": size(gateway.limits.default.connects),
        "limiter.failed_auth_per_ip": size(gateway.limits.default.failed_auth),
        "limiter.connects_per_user": size(gateway.limits.user_connects),
        "limiter.events_per_user": size(gateway.limits.user_events),
        "token_cache.entries": len(cache),
        "token_cache.unexpired": unexpired,
        "browser_sessions": size(store) if store is not None else 0,
        "socketio.namespaces": len(rooms),
        "socketio.rooms": sum(len(by_room) for by_room in rooms.values()),
        "socketio.room_members": sum(len(m) for r in rooms.values() for m in r.values()),
        "socketio.sid_rooms": len(manager._sid_rooms),
        "socketio.eio_to_sid": len(manager.eio_to_sid),
        "socketio.callbacks": len(manager.callbacks),
        "socketio.pending_disconnect": sum(len(v) for v in manager.pending_disconnect.values()),
        "socketio.environ": len(sio.environ),
        "socketio.pending_events": len(sio.pending_events),
        "engineio.sockets": len(sio.eio.sockets),
        "asyncio.tasks": len(asyncio.all_tasks()),
        "gc.objects": len(gc.get_objects()),
    }


def timer_state(sso: SsoServer) -> dict[str, Any]:
    """Whether the gateway's timer loop runs, and the chain of awaits it is suspended in."""
    task = sso.gateway.timers.task
    if task is None:
        return {"running": False, "stack": []}
    return {"running": not task.done(), "stack": await_chain(task.get_coro())}


def sessions(sso: SsoServer) -> dict[str, Any]:
    """python-engineio's sockets and the gateway's unauthenticated sessions, one by one."""
    listed = []
    for sid, sock in list(sso.sio.eio.sockets.items())[:200]:
        queue = sock.queue
        listed.append(
            {
                "sid": sid,
                "closed": sock.closed,
                "closing": sock.closing,
                "connected": sock.connected,
                "upgraded": sock.upgraded,
                "queued": queue.qsize(),
                "unfinished": getattr(queue, "_unfinished_tasks", None),
                "pending": sid in sso.gateway.pending,
            }
        )
    return {"sockets": listed, "pending": list(sso.gateway.pending)[:200]}


def short(filename: str) -> str:
    """A source file named without this machine's directories."""
    for marker in ("/site-packages/", "/lib/python3."):
        if marker in filename:
            rest = filename.split(marker, 1)[1]
            return rest if marker == "/site-packages/" else "python3." + rest
    return os.path.relpath(filename, ROOT)


def await_chain(awaitable: object, depth: int = 40) -> list[str]:
    """Where a suspended coroutine waits: one line per frame, innermost last."""
    lines: list[str] = []
    while awaitable is not None and len(lines) < depth:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            lines.append(f"waiting on {type(awaitable).__name__}: {str(awaitable)[:300]}")
            break
        code = frame.f_code
        where = short(code.co_filename)
        lines.append(f"{where}:{frame.f_lineno} in {code.co_name}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None)
    return lines


def collect() -> float:
    """A full collection, then glibc's free memory handed back; the seconds it took."""
    started = time.perf_counter()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return time.perf_counter() - started


class SoakDebug:
    """ASGI wrapper: ``/__soak/...`` answered here, everything else to ssoio."""

    def __init__(self, app: ASGIApp, sso: SsoServer) -> None:
        self.app = app
        self.sso = sso
        self.baseline: tracemalloc.Snapshot | None = None
        self.not_found: dict[str, Any] = {"error": "not found"}

    def traced(self) -> list[str]:
        """With tracemalloc on: the first call keeps a baseline snapshot, later ones list
        the allocation sites that grew most since it."""
        if not tracemalloc.is_tracing():
            return []
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        if self.baseline is None:
            self.baseline = snapshot
            return []
        grown = snapshot.compare_to(self.baseline, "lineno")[:15]
        return [
            f"{short(s.traceback[0].filename)}:{s.traceback[0].lineno} "
            f"{s.size_diff / 1024:+,.0f} KiB ({s.count_diff:+,} blocks)"
            for s in grown
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(DEBUG_PREFIX):
            await self.app(scope, receive, send)
            return
        method = scope.get("method")
        status, body = 404, self.not_found
        if path == DEBUG_PREFIX + "stats" and method == "GET":
            status, body = 200, stats(self.sso)
        elif path == DEBUG_PREFIX + "sessions" and method == "GET":
            status, body = 200, sessions(self.sso)
        elif path == DEBUG_PREFIX + "timer" and method == "GET":
            status, body = 200, timer_state(self.sso)
        elif path == DEBUG_PREFIX + "gc" and method == "POST":
            seconds = collect()
            status, body = 200, {**stats(self.sso), "gc_ms": round(seconds * 1000)}
            if tracemalloc.is_tracing():
                body["tracemalloc"] = self.traced()
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True, help="the OpenID Provider's issuer URL")
    parser.add_argument("--expiry-warning", type=int, default=30, help="seconds")
    parser.add_argument("--ip-limit", type=int, default=100_000, help="per-IP limits")
    parser.add_argument("--user-events", type=int, default=5_000, help="events/s per user")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--log-format", choices=["json", "text"], default="json")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace allocations (slow): POST /__soak/gc "
        "then lists the sites that grew since its first call",
    )
    args = parser.parse_args()

    if args.tracemalloc:
        tracemalloc.start(1)
    settings = validate_raw(settings_document(args), environment(args))
    configure_logging(settings.logging, level=getattr(logging, args.log_level.upper()))
    tune_garbage_collector()
    sso = SsoServer(settings)
    config = uvicorn_config(sso, "127.0.0.1", args.port)
    config.app = SoakDebug(sso.asgi_app, sso)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
