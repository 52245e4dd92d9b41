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
    "http.connections.refused": "connections_per_address_refused",
}


class Metrics:
    """Counters and histograms of one node, plus live gauges read at scrape time."""

    def __init__(self, known_events: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._known = set(known_events)
        self._children: dict[tuple[Counter, tuple[str, ...]], Counter] = {}
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
        self.refusals = Counter(
            "ssoio_limit_refusals_total",
            "Connects and sessions refused by a limit, by limit name and the kind of key it "
            "counts (address, range, user, tenant)",
            ["limit", "key_kind"], registry=r,
        )  # fmt: skip
        self.api = Counter("ssoio_api_requests_total", "Server API calls, by path and result",
                           ["path", "result"], registry=r)  # fmt: skip
        self.security = Counter("ssoio_security_events_total", "Other security events, by kind",
                                ["kind"], registry=r)  # fmt: skip
        self.reloads = Counter("ssoio_config_reloads_total", "Configuration reloads, by result",
                               ["result"], registry=r)  # fmt: skip
        self.recoveries = Counter(
            "ssoio_recoveries_total",
            "Connection state recoveries, by result (attempted, succeeded, refused) and the "
            "reason of a refusal",
            ["result", "reason"], registry=r,
        )  # fmt: skip
        self.replayed = Counter("ssoio_recovery_replayed_events_total",
                                "Missed room events replayed to recovered clients",
                                registry=r)  # fmt: skip

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
        inc = self._inc
        if event.startswith("auth.connect."):
            inc(self.connects, event.rsplit(".", 1)[1], code)
            if code == "rate_limited":
                inc(self.rate_limited, "connect")
                self._refusal(fields)
        elif event in ("event.allowed", "event.denied"):
            name = str(fields.get("name", ""))
            label = name if name in self._known else "other"
            inc(self.events, label, event.rsplit(".", 1)[1], code)
            if code == "rate_limited":
                inc(self.rate_limited, "events")
        elif event == "auth.revoked":
            inc(self.disconnects, code)
        elif event == "key.fetch":
            inc(self.key_fetches, str(fields.get("issuer")), str(fields.get("result")))
        elif event == "key.rotated":
            inc(self.key_rotations, str(fields.get("issuer")))
        elif event.startswith("api."):
            path = str(fields.get("path") or _API_PATHS.get(event, event))
            inc(self.api, path, "refused" if event == "api.refused" else "ok")
        elif event == "auth.session.refused":
            inc(self.rate_limited, "unauthenticated_sessions")
            self._refusal(fields)
        elif event == "config.reload":
            inc(self.reloads, str(fields.get("result")))
        elif event.startswith("recovery."):
            self._recovery(event.rsplit(".", 1)[1], fields)
        elif event in _SECURITY_EVENTS:
            inc(self.security, _SECURITY_EVENTS[event])

    def _recovery(self, result: str, fields: dict[str, Any]) -> None:
        # reasons are ssoio's own (realtime.recovery), never a client's
        self._inc(self.recoveries, result, str(fields.get("reason", "")))
        replayed = fields.get("replayed")
        if isinstance(replayed, int) and replayed > 0:
            self.replayed.inc(replayed)

    def _refusal(self, fields: dict[str, Any]) -> None:
        # limit names and key kinds are ssoio's own (realtime.admission), never a client's
        limit, kind = fields.get("limit"), fields.get("key_kind")
        if isinstance(limit, str) and isinstance(kind, str):
            self._inc(self.refusals, limit, kind)

    def _inc(self, counter: Counter, *labels: str) -> None:
        # prometheus_client's labels() validates and locks per call (a few µs, on every
        # connect and event); the children it returns are kept here. Label values are
        # bounded: known event names, codes, issuers, paths.
        key = (counter, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        child.inc()


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
