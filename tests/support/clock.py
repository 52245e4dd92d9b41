"""A clock the tests move by hand."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FakeClock"]

START = 1_800_000_000.0


@dataclass
class FakeClock:
    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
