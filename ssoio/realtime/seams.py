"""What the gateway needs from its neighbours, as protocols it owns (DESIGN.md: arrows
point down; realtime talks to the transport, the browser login and the cluster only
through these).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from ssoio.config.server import BucketSettings
from ssoio.realtime.ratelimit import RateLimiter

__all__ = [
    "BrowserSession",
    "Cluster",
    "Limiter",
    "LimiterFactory",
    "SessionResolver",
    "Transport",
]


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


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """The ssoio browser session a connection belongs to: its sockets end with it."""

    id: str
    ends_at: float  # login.session_max_age_s after sign-in


class SessionResolver(Protocol):
    """The browser-login seam: which browser session a connect belongs to."""

    cookie_name: str  # "ssoio_session", "__Host-ssoio_session" under https

    async def resolve(self, cookie_value: str) -> tuple[BrowserSession, str] | None:
        """A session cookie's session and its current access token; None: no session."""
        ...

    async def token_session(self, fingerprint: bytes) -> BrowserSession | None:
        """The session a presented token was handed to by ``/auth/token`` (None: a token
        obtained elsewhere).

        :raises TokenRevoked: that session has ended (logout, expiry, refused refresh).
        """
        ...


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
