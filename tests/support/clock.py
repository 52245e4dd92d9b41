"""A clock the tests move by hand, and a ``sleep`` that follows it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = ["FakeClock"]

START = 1_800_000_000.0


@dataclass
class FakeClock:
    now: float = START
    _sleepers: list[tuple[float, asyncio.Future[None]]] = field(
        default_factory=list, repr=False, compare=False
    )

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time on, waking every ``sleep`` that is now due."""
        self.now += seconds
        for entry in [e for e in self._sleepers if e[0] <= self.now]:
            self._sleepers.remove(entry)
            if not entry[1].done():
                entry[1].set_result(None)

    async def sleep(self, seconds: float) -> None:
        """An ``asyncio.sleep`` in this clock's time: it returns once ``advance`` has moved
        the clock ``seconds`` on (a background loop given it runs only when a test says)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        entry = (self.now + seconds, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        try:
            await entry[1]
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    @property
    def sleeping(self) -> int:
        """How many ``sleep`` calls are waiting."""
        return len(self._sleepers)
