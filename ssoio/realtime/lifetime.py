"""One scheduler for every time-bound thing on a node: token expiry warnings, expiry
disconnects, and Engine.IO sessions that never authenticated.

A heap of (deadline, kind, key, generation) entries: the node's single timer loop pops
what is due, so 10,000 connections cost one timer, not 10,000 tasks. Entries are not
removed when a connection goes away; they are ignored when popped (the generation no
longer matches), and the heap is compacted when stale entries outnumber live ones.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Literal, NamedTuple

__all__ = ["Due", "Scheduler"]

Kind = Literal["warn", "expire", "session_end", "unauthenticated"]


class Due(NamedTuple):
    """A heap entry: ordered by deadline, then by insertion (compared as a tuple, in C)."""

    when: float
    seq: int
    kind: Kind
    key: str
    generation: int


class Scheduler:
    """Deadlines in a heap; ``pop_due(now)`` returns what has come due, in order."""

    def __init__(self) -> None:
        self._heap: list[Due] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, when: float, kind: Kind, key: str, generation: int = 0) -> None:
        heapq.heappush(self._heap, Due(when, next(self._seq), kind, key, generation))

    def next_deadline(self) -> float | None:
        return self._heap[0].when if self._heap else None

    def pop_due(self, now: float) -> list[Due]:
        due: list[Due] = []
        while self._heap and self._heap[0].when <= now:
            due.append(heapq.heappop(self._heap))
        return due

    def drop_stale(self, live: Callable[[Due], bool]) -> None:
        """Pop the stale entries at the head, so that ``next_deadline`` is a live one: the
        timeout entry of every session that authenticated would otherwise wake the timer
        loop once, for nothing."""
        while self._heap and not live(self._heap[0]):
            heapq.heappop(self._heap)

    def compact(self, live: Callable[[Due], bool]) -> None:
        """Drop entries ``live`` rejects (call when stale entries pile up)."""
        self._heap = [entry for entry in self._heap if live(entry)]
        heapq.heapify(self._heap)
