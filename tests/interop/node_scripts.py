"""Running a node harness script (sio_client.mjs, browser.mjs): one JSON script on
stdin, one JSON observation per line on stdout, `{"type": "done"}` last."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .processes import drain, terminate
from .provider import INTEROP_DIR, ensure_node_modules, require_tool

TAIL_CHARS: Final = 4000


async def run_json_script(
    script_file: Path,
    script: dict[str, Any],
    *,
    timeout_s: float,
    error: type[Exception],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run ``node script_file`` with ``script``; its observations, or ``error`` raised with
    the stderr tail when node fails, times out or writes anything but JSON objects."""
    node = require_tool("node")
    ensure_node_modules()
    process = await asyncio.create_subprocess_exec(
        node, str(script_file), cwd=cwd or INTEROP_DIR, env=dict(env) if env else None,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = bytearray(), bytearray()
    name = script_file.name
    try:
        await asyncio.wait_for(_converse(process, script, stdout, stderr), timeout_s)
    except TimeoutError as exc:
        raise error(f"node {name} did not finish within {timeout_s:g} s{tail(stderr)}") from exc
    finally:
        await terminate(process)
    if process.returncode != 0:
        raise error(
            f"node {name} exited with {process.returncode}{tail(stderr)}\n"
            f"stdout so far:\n{stdout.decode('utf-8', 'replace')[-TAIL_CHARS:]}"
        )
    return _parse(stdout, stderr, error)


async def _converse(
    process: asyncio.subprocess.Process, script: dict[str, Any], stdout: bytearray,
    stderr: bytearray,
) -> None:  # fmt: skip
    """Feed the script, read both pipes to their end (so node never blocks), await the exit."""
    assert process.stdin is not None
    process.stdin.write(json.dumps(script).encode("utf-8"))
    with contextlib.suppress(ConnectionError):
        await process.stdin.drain()
    process.stdin.close()
    await asyncio.gather(
        drain(process.stdout, stdout, keep=None),
        drain(process.stderr, stderr),
    )
    await process.wait()


def tail(stderr: bytearray) -> str:
    text = bytes(stderr).decode("utf-8", "replace")[-TAIL_CHARS:]
    return f"; stderr tail:\n{text}" if text else " (no stderr)"


def _parse(stdout: bytearray, stderr: bytearray, error: type[Exception]) -> list[dict[str, Any]]:
    """One JSON object per line; anything else means the harness misbehaved."""
    observations: list[dict[str, Any]] = []
    for line in stdout.decode("utf-8", "replace").splitlines():
        try:
            observation = json.loads(line)
        except ValueError as exc:
            raise error(f"non-JSON line on stdout: {line[:200]!r}{tail(stderr)}") from exc
        if not isinstance(observation, dict):
            raise error(f"stdout line is not an object: {line[:200]!r}{tail(stderr)}")
        observations.append(observation)
    if not observations or observations[-1] != {"type": "done"}:
        raise error(f"the run did not end with a done observation{tail(stderr)}")
    return observations
