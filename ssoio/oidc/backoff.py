"""Retrying a provider that failed: soon at first, never hammering it."""

from __future__ import annotations

__all__ = ["refresh_delay", "retry_delay"]

# The background refresher waits at least this long between attempts, whatever the
# configured cool-down (which may be 0), so a provider that is down is never polled in a
# tight loop.
MIN_RETRY_S = 1.0


def retry_delay(cooldown_s: float, failing: int) -> float:
    """How long to wait before the next fetch: the cool-down once keys were fetched;
    after failures, 1, 2, 4... seconds up to the cool-down, so a provider that was down
    when ssoio started (or in the same process, not yet listening) is retried soon,
    without ever being hammered."""
    if failing == 0:
        return cooldown_s
    return float(min(cooldown_s, 2 ** min(failing - 1, 16)))


def refresh_delay(due_in_s: float, cooldown_s: float, failing: int, jitter: float) -> float:
    """How long the background refresher sleeps before its next look at the keys.

    While fetches succeed: until the key set is due (``due_in_s``, at least
    ``MIN_RETRY_S``). After ``failing`` failures in a row: 1, 2, 4... seconds, capped at the
    cool-down (at least ``MIN_RETRY_S``), scaled by ``0.5 + jitter / 2`` (``jitter`` in
    [0, 1)) so that nodes restarted together do not retry in step ("equal jitter": never
    less than half the back-off).
    """
    if failing == 0:
        return max(due_in_s, MIN_RETRY_S)
    backoff = min(max(cooldown_s, MIN_RETRY_S), 2.0 ** min(failing - 1, 16))
    return backoff * (0.5 + min(max(jitter, 0.0), 1.0) / 2)
