"""Retrying a provider that failed: soon at first, never hammering it."""

from __future__ import annotations

__all__ = ["retry_delay"]


def retry_delay(cooldown_s: float, failing: int) -> float:
    """How long to wait before the next fetch: the cool-down once keys were fetched;
    after failures, 1, 2, 4... seconds up to the cool-down, so a provider that was down
    when ssoio started (or in the same process, not yet listening) is retried soon,
    without ever being hammered."""
    if failing == 0:
        return cooldown_s
    return float(min(cooldown_s, 2 ** min(failing - 1, 16)))
