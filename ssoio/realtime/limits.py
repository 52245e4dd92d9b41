"""The gateway's rate limits: connect attempts and failed authentications per address,
events per user.

Per-address limits may be shared by a cluster's nodes (one budget per address across
nodes, through a ``LimiterFactory``); events per user stay per node: a round trip to
Redis per event is not worth it.
"""

from __future__ import annotations

from ssoio.clock import Clock
from ssoio.config.server import LimitSettings
from ssoio.realtime.ratelimit import RateLimiter
from ssoio.realtime.seams import Limiter, LimiterFactory

__all__ = ["GatewayLimits"]


class GatewayLimits:
    """The limiters in force; ``use`` replaces them when a reload changes the limits."""

    def __init__(
        self, settings: LimitSettings, clock: Clock, shared: LimiterFactory | None = None
    ) -> None:
        self._clock = clock
        self._shared = shared
        self.use(settings)

    def use(self, settings: LimitSettings) -> None:
        keys = settings.max_tracked_keys
        connects = RateLimiter(settings.connects_per_ip, self._clock, keys)
        failed = RateLimiter(settings.failed_auth_per_ip, self._clock, keys)
        self.connects: Limiter = connects
        self.failed_auth: Limiter = failed
        if self._shared is not None:
            self.connects = self._shared("connects", settings.connects_per_ip, connects)
            self.failed_auth = self._shared("failed_auth", settings.failed_auth_per_ip, failed)
        self.user_events = RateLimiter(settings.events_per_user, self._clock, keys)
