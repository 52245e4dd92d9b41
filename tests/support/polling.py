"""Bounded waits for state that offers no event to wait on: a bound, never a timing
assertion (on a loaded machine the condition only takes longer to come true)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLL_S = 0.01


async def eventually(condition: Callable[[], bool], bound_s: float = 5.0) -> bool:
    """Whether ``condition`` came true within ``bound_s`` (checked every 10 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound_s
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True
