"""The gateway's rate limits, keyed by what they protect.

* Addresses (``addresses.client_key``: an address, an IPv6 /64) pay for what is
  anonymous or failed: ``connects_per_ip`` is spent by every connect attempt and given
  back as soon as it authenticates, ``failed_auth_per_ip`` by failed authentications.
  Named ranges (``limits.address_ranges``, a corporate egress) share one budget of their
  own instead, with their own caps on unauthenticated sessions.
* Users (issuer, sub) and, when configured, tenants pay for what is authenticated:
  connects per second (a bucket) and live sockets (counted on this node).
* Events per user.

Connect buckets may be shared by a cluster's nodes (one budget per key across nodes,
through a ``LimiterFactory``); events per user stay per node: a round trip to Redis per
event is not worth it, and so do socket counts (a count held in Redis would outlive a
node that dies with its sockets).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ssoio.addresses import client_key
from ssoio.clock import Clock
from ssoio.config.server import BucketSettings, LimitSettings, RealtimeSettings
from ssoio.realtime.ratelimit import RateLimiter
from ssoio.realtime.seams import Limiter, LimiterFactory

__all__ = ["AddressBudget", "GatewayLimits"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AddressBudget:
    """What one address key may spend: its buckets and its unauthenticated-session caps.
    ``kind`` is "address" or "range" (metrics and audit lines)."""

    kind: str
    connects: Limiter
    failed_auth: Limiter
    max_unauthenticated: int
    max_handshakes: int


class GatewayLimits:
    """The limiters in force; ``use`` replaces them when a reload changes the limits."""

    def __init__(
        self, settings: LimitSettings, clock: Clock, shared: LimiterFactory | None = None,
        realtime: RealtimeSettings | None = None,
    ) -> None:  # fmt: skip
        self._clock = clock
        self._shared = shared
        self.use(settings, realtime or RealtimeSettings())

    def _limiter(self, name: str, bucket: BucketSettings, keys: int) -> Limiter:
        local = RateLimiter(bucket, self._clock, keys)
        return local if self._shared is None else self._shared(name, bucket, local)

    def use(self, settings: LimitSettings, realtime: RealtimeSettings) -> None:
        keys = settings.max_tracked_keys
        self.settings = settings
        self.default = AddressBudget(
            "address",
            self._limiter("connects", settings.connects_per_ip, keys),
            self._limiter("failed_auth", settings.failed_auth_per_ip, keys),
            realtime.max_unauthenticated_per_ip, realtime.max_handshakes_per_ip,
        )  # fmt: skip
        self._ranges: list[tuple[str, tuple[Network, ...], AddressBudget]] = [
            (f"range:{r.name}", tuple(ipaddress.ip_network(c) for c in r.cidrs), AddressBudget(
                "range", self._limiter(f"connects:{r.name}", r.connects, 1),
                self._limiter(f"failed_auth:{r.name}", r.failed_auth, 1),
                r.max_unauthenticated, r.max_handshakes,
            ))
            for r in settings.address_ranges
        ]  # fmt: skip
        self.user_connects = self._limiter("user_connects", settings.connects_per_user, keys)
        tenants = settings.tenants
        self.tenant_connects = (
            self._limiter("tenant_connects", tenants.connects, keys) if tenants else None
        )
        self.user_events = RateLimiter(settings.events_per_user, self._clock, keys)

    def address(self, ip: str) -> tuple[str, AddressBudget]:
        """The key ``ip`` is counted under (its named range's, else ``client_key``) and
        that key's budget."""
        if self._ranges:
            try:
                parsed = ipaddress.ip_address(ip)
            except ValueError:
                parsed = None
            if parsed is not None:
                if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
                    parsed = parsed.ipv4_mapped
                for key, networks, budget in self._ranges:
                    if any(parsed in network for network in networks):
                        return key, budget
        return client_key(ip), self.default
