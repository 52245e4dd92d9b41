"""Run the ``ssoio`` command as a real subprocess, the way operators do."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

__all__ = ["CliResult", "run_cli"]


@dataclass(frozen=True)
class CliResult:
    status: int
    stdout: str
    stderr: str


async def run_cli(
    *args: str, stdin: str = "", timeout_s: float = 60, env: dict[str, str] | None = None
) -> CliResult:
    """``python -m ssoio.cli ARGS`` with warnings as errors (``env`` added to the
    environment); bounded in time."""
    environment = {**os.environ, "PYTHONWARNINGS": "error", **(env or {})}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ssoio.cli", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=environment,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())
