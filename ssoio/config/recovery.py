"""Configuration of connection state recovery (socket.io 4.6+'s protocol, authorised)."""

from __future__ import annotations

from pydantic import Field

from ssoio.config.base import Section

__all__ = ["RecoverySettings"]


class RecoverySettings(Section):
    """Off unless ``enabled``. In memory on one node; in Redis when ``cluster.redis_url``
    is set. Every cap bounds memory (or Redis) whatever clients do: a client whose gap was
    trimmed by one of them reconnects with ``recovered = false``."""

    enabled: bool = False
    # socket.io's maxDisconnectionDuration: a session is recoverable this long after its
    # transport went away (the session record's TTL; the event log keeps events as long).
    max_disconnection_s: float = Field(120, gt=0, le=3600)
    # Events kept per room (the oldest go first) and in total on one node (memory) or in
    # the cluster (Redis: rooms with a log, each capped by max_events_per_room).
    max_events_per_room: int = Field(1000, ge=1, le=1_000_000)
    max_events_total: int = Field(100_000, ge=1, le=100_000_000)
    max_rooms: int = Field(10_000, ge=1, le=10_000_000)
    # Missed events sent to one recovering client at most; more: not recovered.
    max_replay: int = Field(1000, ge=1, le=100_000)
