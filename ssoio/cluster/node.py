"""Joining a node to its cluster: the bus handlers, shared state. (The Socket.IO manager
that carries room emits between nodes is ``ssoio.transport.manager.ClusterManager``.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ssoio.clock import Clock
from ssoio.cluster.bus import ClusterBus
from ssoio.cluster.recovery import LOGGED, Announce, RedisRecoveryStore
from ssoio.cluster.state import RedisRateLimiter
from ssoio.config.model import Settings
from ssoio.config.server import BucketSettings
from ssoio.policy.principal import principal_from_dict, principal_to_dict
from ssoio.policy.visibility import FieldVisibility
from ssoio.realtime.gateway import Gateway
from ssoio.realtime.ratelimit import RateLimiter
from ssoio.realtime.recovery import LiveElsewhere
from ssoio.realtime.recovery_log import LoggedEvent, SessionRecord, pid_digest

__all__ = ["link", "recovery_parts", "shared_limiter"]


def link(gateway: Gateway, bus: ClusterBus, reload: Callable[[], Awaitable[Any]]) -> None:
    """Let ``bus`` messages from other nodes act on ``gateway``'s local connections (the
    gateway itself was given ``bus`` as its ``cluster`` when it was built)."""

    async def revoke(body: dict[str, Any]) -> int:
        return await gateway.revoke_here(body)

    async def kick(body: dict[str, Any]) -> int:
        actor = principal_from_dict(body["actor"])
        return await gateway.kick_here(str(body["event"]), actor, str(body["sub"]))

    def visibility_of(event: str, visible: list[str]) -> FieldVisibility:
        # The same configuration runs on every node; a visibility this node does not know
        # (a custom one from Python) hides the listed fields from everyone: fail closed.
        return gateway.relay_visibility(event) or FieldVisibility.compile(
            dict.fromkeys(visible, "nobody")
        )

    async def deliver(body: dict[str, Any]) -> None:
        event = str(body["event"])
        visibility = visibility_of(event, list(body.get("visible", [])))
        offset = body.get("offset")
        await gateway.deliver_here(str(body["room"]), event, dict(body["payload"]), visibility,
                                   str(body.get("namespace", "/")),
                                   offset if isinstance(offset, str) else None)  # fmt: skip

    async def logged(body: dict[str, Any]) -> None:
        # a room event logged and published by one script (cluster.recovery), by any node,
        # this one included: delivered here in the log's order
        entry = LoggedEvent.from_dict(str(body["offset"]), body["entry"])
        visibility = visibility_of(entry.event, list(entry.visible))
        await gateway.deliver_here(entry.room, entry.event, entry.payload, visibility,
                                   entry.namespace, entry.offset)  # fmt: skip

    async def presence(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [principal_to_dict(p) for p in gateway.members_here(str(body["room"]))]

    async def reload_config(_body: dict[str, Any]) -> None:
        await reload()

    async def recovery_live(body: dict[str, Any]) -> bool:
        digest = str(body.get("pid"))
        return any(c.pid and pid_digest(c.pid) == digest for c in gateway.connections)

    bus.handlers.update({"revoke": revoke, "kick": kick, "deliver": deliver,
                         "presence": presence, "reload": reload_config,
                         "recovery_live": recovery_live, LOGGED: logged})  # fmt: skip
    bus.echoed.add(LOGGED)


def recovery_parts(bus: ClusterBus, settings: Settings) -> tuple[RedisRecoveryStore, LiveElsewhere]:
    """Connection state recovery over the cluster: the Redis store, and how to ask the
    other nodes whether a session's socket is still live on one of them (a node that
    does not answer in time, e.g. killed, holds none)."""
    recovery = settings.recovery
    channel, start = bus.framing(LOGGED)
    # (announced only while this node hears the bus and handles its own logged events)
    announce = Announce(channel, start, lambda: bus.listening and LOGGED in bus.handlers)
    store = RedisRecoveryStore(bus.redis, settings.cluster.channel, recovery.max_disconnection_s,
                               recovery.max_events_per_room, recovery.max_rooms,
                               announce)  # fmt: skip

    async def live_elsewhere(record: SessionRecord) -> bool:
        answers, _complete = await bus.request("recovery_live", {"pid": pid_digest(record.pid)})
        return any(answer is True for answer in answers)

    return store, live_elsewhere


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
