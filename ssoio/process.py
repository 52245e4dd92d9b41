"""Process-wide settings applied by ``ssoio serve`` (and the benchmarks, to match it)."""

from __future__ import annotations

import gc

__all__ = ["tune_garbage_collector"]

# Measured on this project's target machine: with thousands of live connections the
# cyclic collector's young-generation passes were ~37% of connect CPU and made the
# connect p99; these thresholds cut the p99 roughly fourfold (see benchmarks/).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """Raise the cyclic GC thresholds; reference counting still frees most garbage."""
    gc.set_threshold(*GC_THRESHOLDS)
