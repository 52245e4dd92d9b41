"""An ssoio node as ``ssoio serve`` runs it, with one embedded guarded ``echo`` handler.

The configuration trusts one issuer whose keys come from ``--jwks-uri`` (so discovery is
skipped), accepts only RFC 9068 access tokens (``typ: at+jwt``) for audience
``bench-api``, maps claims with the keycloak preset plus a ``tenant`` attribute, and
auto-joins every connection to ``user:{sub}`` and ``tenant:{tenant}`` as the reference
policy does. ``echo {n: integer}`` requires ``authenticated``, so every event passes the
whole guard: connection lookup, both rate limits, payload shape, token lifetime, the
event rule, then the handler, whose result is merged into the ack ``{"ok": true, "n": n}``.

Deviations from the defaults, all because every benchmark client comes from 127.0.0.1:
``limits.connects_per_ip``, ``limits.events_per_connection`` and ``limits.events_per_user``
are raised to rate 100000 / burst 100000, and ``realtime.max_unauthenticated_per_ip`` to
100000 (the connect storm has up to 50 Engine.IO sessions from one address waiting for
their authenticated connect at once; the default allows 20). Logging is at WARNING so the
per-connect audit lines cost no I/O. The process is otherwise set up as ``ssoio serve``
does: ``tune_garbage_collector()`` and ``uvicorn_config(...)``.

``--profile FILE`` adds cProfile, switched on by SIGUSR1 and off by SIGUSR2, which also
writes the stats to FILE: the load generator sends them at a phase's start and end, so
start-up, warm-up and teardown stay out of the profile.

Run (``benchmarks/realtime.py`` does): ``.venv/bin/python benchmarks/servers/ssoio_node.py
--port N --issuer URL --jwks-uri URL``
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import signal
from collections.abc import Mapping
from types import FrameType
from typing import Any

import uvicorn

from ssoio.app import SsoServer
from ssoio.config.loading import validate_raw
from ssoio.policy.principal import Principal
from ssoio.process import tune_garbage_collector
from ssoio.serving import configure_logging, uvicorn_config

AUDIENCE = "bench-api"
HIGH = {"rate": 100_000, "burst": 100_000}


def settings_document(port: int, issuer: str, jwks_uri: str) -> dict[str, Any]:
    """The benchmark node's configuration, as a parsed TOML document."""
    return {
        "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
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
        ],
    }


def build(port: int, issuer: str, jwks_uri: str) -> SsoServer:
    """The node, with the guarded ``echo`` handler registered."""
    sso = SsoServer(validate_raw(settings_document(port, issuer, jwks_uri), {}))

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
        "--profile", metavar="FILE", help="cProfile between SIGUSR1 and SIGUSR2, stats to FILE"
    )
    args = parser.parse_args()

    configure_logging(level=logging.WARNING)
    tune_garbage_collector()
    sso = build(args.port, args.issuer, args.jwks_uri)
    if args.profile is not None:
        profile_on_signals(args.profile)
    uvicorn.Server(uvicorn_config(sso, "127.0.0.1", args.port)).run()


def profile_on_signals(path: str) -> None:
    """SIGUSR1 starts cProfile; SIGUSR2 stops it and writes the stats to ``path``."""
    profiler = cProfile.Profile()

    def start(_signum: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(path)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


if __name__ == "__main__":
    main()
