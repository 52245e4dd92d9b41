"""Child processes of the tests: pipes read to their end, stops that always finish."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

STOP_TIMEOUT_S: Final = 5.0
KEEP_BYTES: Final = 64 * 1024


async def drain(
    stream: asyncio.StreamReader | None, sink: bytearray, *, keep: int | None = KEEP_BYTES
) -> None:
    """Read a pipe to its end so the child never blocks on it; keep everything, or only the
    last ``keep`` bytes."""
    if stream is None:
        return
    while chunk := await stream.read(8192):
        sink.extend(chunk)
        if keep is not None and len(sink) > keep:
            del sink[: len(sink) - keep]


async def terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after a bound: a timed-out or cancelled run leaves no child."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
