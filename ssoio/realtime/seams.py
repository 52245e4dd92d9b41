"""What the gateway needs from its neighbours, as protocols it owns (DESIGN.md: arrows
point down; realtime talks to the transport, the browser login and the cluster only
through these).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Protocol

from ssoio.config.server import BucketSettings
from ssoio.realtime.ratelimit import RateLimiter

__all__ = ["Cluster", "Limiter", "LimiterFactory", "SessionResolver", "Transport"]


class Transport(Protocol):
    """What the gateway needs of the Socket.IO server (``server.SocketServer``)."""

    async def emit(
        self,
        event: str,
        data: Any,
        *,
        to: str | list[str],
        namespace: str,
        ignore_queue: bool = False,
    ) -> None: ...

    async def enter(self, sid: str, room: str, namespace: str) -> None: ...

    async def leave(self, sid: str, room: str, namespace: str) -> None: ...

    async def disconnect(self, sid: str, namespace: str) -> None: ...

    async def close_session(self, eio_sid: str) -> None: ...


class SessionResolver(Protocol):
    """The browser-login seam: a session cookie -> (session id, current access token)."""

    cookie_name: str  # "ssoio_session", "__Host-ssoio_session" under https

    async def resolve(self, cookie_value: str) -> tuple[str, str] | None: ...


class Cluster(Protocol):
    """The other nodes of a cluster (``cluster.bus.ClusterBus``)."""

    async def publish(self, kind: str, body: dict[str, Any]) -> bool:
        """Tell every other node (no answer awaited); False when it could not be sent."""
        ...

    async def request(self, kind: str, body: dict[str, Any]) -> tuple[list[Any], bool]:
        """Ask every other node; (their answers, whether every node answered in time)."""
        ...


class Limiter(Protocol):
    async def allow(self, key: Hashable) -> bool: ...

    async def peek(self, key: Hashable) -> bool: ...

    async def refund(self, key: Hashable) -> None: ...


# (limit name, its bucket, this node's own limiter) -> the limiter to use; a cluster
# passes one that shares the budget over Redis (``cluster.node.shared_limiter``).
LimiterFactory = Callable[[str, BucketSettings, RateLimiter], Limiter]
