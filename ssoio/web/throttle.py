"""Per-address limits on anonymous HTTP routes (``GET /auth/login``).

An address pays for what it asks anonymously (DESIGN.md: addresses for anonymous
attempts); the bucket is sized so that an office behind one NAT address can still sign
in at once. IPv6 clients are keyed by their /64: one subscriber usually holds a whole
/64 (RFC 6177 §2, RFC 7934 §6) and could otherwise take a fresh address per request.
"""

from __future__ import annotations

from starlette.requests import Request

from ssoio.addresses import client_key
from ssoio.clock import Clock
from ssoio.config.server import BucketSettings
from ssoio.realtime.ratelimit import RateLimiter
from ssoio.realtime.seams import Limiter, LimiterFactory

__all__ = ["AddressLimit"]


class AddressLimit:
    """One token bucket per client address; with ``shared``, one budget per address over
    a cluster's nodes, named ``name`` (``shared`` wraps this node's own limiter, its
    fallback)."""

    def __init__(
        self, name: str, bucket: BucketSettings, clock: Clock, max_keys: int,
        shared: LimiterFactory | None = None,
    ) -> None:  # fmt: skip
        self.local = RateLimiter(bucket, clock, max_keys)
        self.limiter: Limiter = self.local if shared is None else shared(name, bucket, self.local)

    async def allow(self, request: Request) -> bool:
        # request.client is the peer, or the forwarded client when the peer is one of
        # server.trusted_proxies (uvicorn's proxy headers, see serving.py)
        host = request.client.host if request.client else None
        return await self.limiter.allow(client_key(host))
