"""Time as a parameter: everything time-dependent takes a ``Clock``.

A clock returns seconds since the Unix epoch as a float. Production code uses
``system_clock``; tests pass a ``FakeClock``-like callable and never sleep or patch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "system_clock"]

Clock = Callable[[], float]

system_clock: Clock = time.time
