"""Joining a node to its cluster: the bus handlers, shared state. (The Socket.IO manager
that carries room emits between nodes is ``ssoio.transport.manager.ClusterManager``.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ssoio.clock import Clock
from ssoio.cluster.bus import ClusterBus
from ssoio.cluster.state import RedisRateLimiter
from ssoio.config.model import Settings
from ssoio.config.server import BucketSettings
from ssoio.policy.principal import principal_from_dict, principal_to_dict
from ssoio.policy.visibility import FieldVisibility
from ssoio.realtime.gateway import Gateway
from ssoio.realtime.ratelimit import RateLimiter

__all__ = ["link", "shared_limiter"]


def link(gateway: Gateway, bus: ClusterBus, reload: Callable[[], Awaitable[Any]]) -> None:
    """Let ``bus`` messages from other nodes act on ``gateway``'s local connections (the
    gateway itself was given ``bus`` as its ``cluster`` when it was built)."""

    async def revoke(body: dict[str, Any]) -> int:
        return await gateway.revoke_here(body)

    async def kick(body: dict[str, Any]) -> int:
        actor = principal_from_dict(body["actor"])
        return await gateway.kick_here(str(body["event"]), actor, str(body["sub"]))

    async def deliver(body: dict[str, Any]) -> None:
        event = str(body["event"])
        # The same configuration runs on every node; a visibility this node does not know
        # (a custom one from Python) hides the listed fields from everyone: fail closed.
        visibility = gateway.relay_visibility(event) or FieldVisibility.compile(
            dict.fromkeys(body.get("visible", []), "nobody")
        )
        await gateway.deliver_here(str(body["room"]), event, dict(body["payload"]), visibility,
                                   str(body.get("namespace", "/")))  # fmt: skip

    async def presence(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [principal_to_dict(p) for p in gateway.members_here(str(body["room"]))]

    async def reload_config(_body: dict[str, Any]) -> None:
        await reload()

    bus.handlers.update({"revoke": revoke, "kick": kick, "deliver": deliver,
                         "presence": presence, "reload": reload_config})  # fmt: skip


def shared_limiter(
    bus: ClusterBus, settings: Settings, clock: Clock
) -> Callable[[str, BucketSettings, RateLimiter], RedisRateLimiter]:
    """Per-IP limits (connects, failed authentications) shared by every node."""

    def make(name: str, bucket: BucketSettings, local: RateLimiter) -> RedisRateLimiter:
        prefix = f"{settings.cluster.channel}:limit:{name}"
        return RedisRateLimiter(
            bus.redis, prefix, local, bucket.rate, bucket.burst, clock, bus.observe
        )

    return make
