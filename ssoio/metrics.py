"""Prometheus metrics, fed by the same events as the audit log (``audit.Observer``).

Names follow Prometheus conventions: ``ssoio_`` prefix, ``_total`` for counters, base
units (seconds). Label values come from small closed sets (codes, issuer names, event
names declared in the configuration), never from client-chosen strings, so a client
cannot blow up the series count. Each node has its own registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Metrics"]

_API_PATHS = {
    "api.emit": "/api/v1/emit",
    "api.disconnect": "/api/v1/disconnect",
    "api.reload": "/api/v1/reload",
}
_SECURITY_EVENTS = {
    "auth.login": "login",
    "auth.logout": "logout",
    "auth.refresh": "token_refresh",
    "auth.refresh.refused": "token_refresh_refused",
    "auth.session.timeout": "unauthenticated_session_closed",
    "auth.origin.refused": "origin_refused",
    "admin.kick": "kick",
    "auth.backchannel.logout": "backchannel_logout",
    "auth.backchannel.refused": "backchannel_logout_refused",
    "room.revoked": "room_revoked",
    "cluster.down": "cluster_down",
    "cluster.up": "cluster_up",
    "cluster.ratelimit.fallback": "cluster_ratelimit_fallback",
    "server.drain": "drain",
}


class Metrics:
    """Counters and histograms of one node, plus live gauges read at scrape time."""

    def __init__(self, known_events: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._known = set(known_events)
        r = self.registry
        self.connects = Counter("ssoio_connects_total", "Socket.IO connects, by result and code",
                                ["result", "code"], registry=r)  # fmt: skip
        self.events = Counter("ssoio_events_total", "Client events, by event and result",
                              ["event", "result", "code"], registry=r)  # fmt: skip
        self.handling = Histogram(
            "ssoio_event_decision_seconds",
            "Time to decide and handle a client event (guard, policy, handler)",
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25),
            registry=r,
        )
        self.key_fetches = Counter("ssoio_key_fetches_total", "JWKS fetches, by issuer and result",
                                   ["issuer", "result"], registry=r)  # fmt: skip
        self.key_rotations = Counter("ssoio_key_rotations_total", "Key set changes, by issuer",
                                     ["issuer"], registry=r)  # fmt: skip
        self.disconnects = Counter("ssoio_disconnects_total",
                                   "Security disconnects (auth:revoked), by reason",
                                   ["reason"], registry=r)  # fmt: skip
        self.rate_limited = Counter("ssoio_rate_limited_total", "Rate-limit trips, by limit",
                                    ["limit"], registry=r)  # fmt: skip
        self.api = Counter("ssoio_api_requests_total", "Server API calls, by path and result",
                           ["path", "result"], registry=r)  # fmt: skip
        self.security = Counter("ssoio_security_events_total", "Other security events, by kind",
                                ["kind"], registry=r)  # fmt: skip
        self.reloads = Counter("ssoio_config_reloads_total", "Configuration reloads, by result",
                               ["result"], registry=r)  # fmt: skip

    def know_event(self, name: str) -> None:
        """Label an (embedded) event by its own name rather than "other"."""
        self._known.add(name)

    def add_gauges(self, read: Callable[[], dict[str, Any]]) -> None:
        """Live values read at scrape time (connections, caches, sessions)."""
        self.registry.register(_Live(read))

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def observe(self, event: str, fields: dict[str, Any]) -> None:
        """Count one audit event (``audit.Observer`` calls this)."""
        code = str(fields.get("code", "ok"))
        if event.startswith("auth.connect."):
            self.connects.labels(event.rsplit(".", 1)[1], code).inc()
            if code == "rate_limited":
                self.rate_limited.labels("connect").inc()
        elif event in ("event.allowed", "event.denied"):
            name = str(fields.get("name", ""))
            label = name if name in self._known else "other"
            self.events.labels(label, event.rsplit(".", 1)[1], code).inc()
            if code == "rate_limited":
                self.rate_limited.labels("events").inc()
        elif event == "auth.revoked":
            self.disconnects.labels(code).inc()
        elif event == "key.fetch":
            self.key_fetches.labels(str(fields.get("issuer")), str(fields.get("result"))).inc()
        elif event == "key.rotated":
            self.key_rotations.labels(str(fields.get("issuer"))).inc()
        elif event.startswith("api."):
            path = str(fields.get("path") or _API_PATHS.get(event, event))
            self.api.labels(path, "refused" if event == "api.refused" else "ok").inc()
        elif event == "auth.session.refused":
            self.rate_limited.labels("unauthenticated_sessions").inc()
        elif event == "config.reload":
            self.reloads.labels(str(fields.get("result"))).inc()
        elif event in _SECURITY_EVENTS:
            self.security.labels(_SECURITY_EVENTS[event]).inc()


class _Live(Collector):
    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Any]:
        values = self._read()
        connections = GaugeMetricFamily("ssoio_connections", "Live authenticated connections",
                                        labels=["namespace"])  # fmt: skip
        for namespace, count in values["connections"].items():
            connections.add_metric([namespace], count)
        yield connections
        yield GaugeMetricFamily("ssoio_unauthenticated_sessions",
                                "Engine.IO sessions not yet authenticated",
                                value=values["unauthenticated"])  # fmt: skip
        yield GaugeMetricFamily("ssoio_rooms", "Rooms with members on this node",
                                value=values["rooms"])  # fmt: skip
        yield GaugeMetricFamily("ssoio_browser_sessions", "Browser sessions in the store",
                                value=values["browser_sessions"])  # fmt: skip
        yield CounterMetricFamily("ssoio_token_cache_hits", "Verified-token cache hits",
                                  value=values["token_cache_hits"])  # fmt: skip
        yield CounterMetricFamily("ssoio_token_cache_lookups", "Verified-token cache lookups",
                                  value=values["token_cache_lookups"])  # fmt: skip
