"""Run the official JavaScript `socket.io-client` (node, sio_client.mjs) from Python tests.

The tests must see what a real JS client sees (connect_error payloads, acks, server-initiated
disconnects), not what python-socketio's client makes of it. A script goes in on stdin and a
list of observations comes back:

script::

    {"url": "http://127.0.0.1:PORT",
     "options": {...socket.io-client options..., "origin": "http://app.example"},
     "steps": [
        {"op": "connect", "timeout_ms": 10000},
        {"op": "emit", "event": "e", "args": [...], "ack": true, "ack_timeout_ms": 5000},
        {"op": "wait", "event": "e", "timeout_ms": 5000},
        {"op": "wait_disconnect", "timeout_ms": 5000},
        {"op": "sleep", "ms": 100},
        {"op": "disconnect"}],
     "record": ["event", ...],
     "timeout_ms": 20000}

observations (in arrival order, `{"type": "done"}` last)::

    {"type": "connect", "id": SID}
    {"type": "connect_error", "message": MSG, "data": DATA-or-null}
    {"type": "ack", "step": I, "event": NAME, "args": [...]}
    {"type": "ack_timeout", "step": I}
    {"type": "ack_error", "step": I, "message": MSG}   # e.g. disconnected while awaiting it
    {"type": "event", "event": NAME, "args": [...]}    # events in `record` or waited for
    {"type": "wait_timeout", "step": I}                # a connect/wait/wait_disconnect ran out
    {"type": "disconnect", "reason": REASON}
    {"type": "done"}

Reconnection is off unless `options.reconnection` is true. `options.origin` is sent as the
`Origin` header on both transports; `options.extraHeaders` (node only) may set it as well.
A `wait` step also consumes an occurrence that arrived before the step started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Final

from .provider import INTEROP_DIR, ensure_node_modules, require_tool

CLIENT_SCRIPT: Final = INTEROP_DIR / "sio_client.mjs"
STOP_TIMEOUT_S: Final = 5.0
STDERR_KEEP_BYTES: Final = 64 * 1024
STDERR_TAIL_CHARS: Final = 4000


class JsClientError(RuntimeError):
    """The node client harness failed (not the server under test: refusals are observations)."""


async def run_js_client(script: dict[str, Any], *, timeout_s: float = 30) -> list[dict[str, Any]]:
    """Run one scripted socket.io-client session; returns its observations, `done` last.

    `timeout_s` bounds the whole node process; keep it above the script's own `timeout_ms`
    (20 s by default) so that node reports its timeout itself, with the step it was at.
    """
    node = require_tool("node")
    ensure_node_modules()
    process = await asyncio.create_subprocess_exec(
        node,
        str(CLIENT_SCRIPT),
        cwd=INTEROP_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = bytearray(), bytearray()
    try:
        await asyncio.wait_for(_converse(process, script, stdout, stderr), timeout_s)
    except TimeoutError as exc:
        raise JsClientError(
            f"node sio_client.mjs did not finish within {timeout_s:g} s{_tail(stderr)}"
        ) from exc
    finally:
        await _terminate(process)
    if process.returncode != 0:
        raise JsClientError(
            f"node sio_client.mjs exited with {process.returncode}{_tail(stderr)}\n"
            f"stdout so far:\n{stdout.decode('utf-8', 'replace')[-STDERR_TAIL_CHARS:]}"
        )
    return _parse(stdout, stderr)


async def _converse(
    process: asyncio.subprocess.Process,
    script: dict[str, Any],
    stdout: bytearray,
    stderr: bytearray,
) -> None:
    """Feed the script, read both pipes to their end (so node never blocks), await the exit."""
    assert process.stdin is not None
    process.stdin.write(json.dumps(script).encode("utf-8"))
    with contextlib.suppress(ConnectionError):
        await process.stdin.drain()
    process.stdin.close()
    await asyncio.gather(
        _drain(process.stdout, stdout, keep=None),
        _drain(process.stderr, stderr, keep=STDERR_KEEP_BYTES),
    )
    await process.wait()


async def _drain(stream: asyncio.StreamReader | None, sink: bytearray, *, keep: int | None) -> None:
    """Read a pipe to its end; keep everything, or only the last `keep` bytes (stderr)."""
    if stream is None:
        return
    while chunk := await stream.read(8192):
        sink.extend(chunk)
        if keep is not None and len(sink) > keep:
            del sink[: len(sink) - keep]


async def _terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after a bound: a timed-out or cancelled run leaves no node behind."""
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


def _tail(stderr: bytearray) -> str:
    text = bytes(stderr).decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]
    return f"; stderr tail:\n{text}" if text else " (no stderr)"


def _parse(stdout: bytearray, stderr: bytearray) -> list[dict[str, Any]]:
    """One JSON object per line; anything else means the harness, not the server, misbehaved."""
    observations: list[dict[str, Any]] = []
    for line in stdout.decode("utf-8", "replace").splitlines():
        try:
            observation = json.loads(line)
        except ValueError as exc:
            raise JsClientError(f"non-JSON line on stdout: {line[:200]!r}{_tail(stderr)}") from exc
        if not isinstance(observation, dict):
            raise JsClientError(f"stdout line is not an object: {line[:200]!r}{_tail(stderr)}")
        observations.append(observation)
    if not observations or observations[-1] != {"type": "done"}:
        raise JsClientError(f"the run did not end with a done observation{_tail(stderr)}")
    return observations


def first(
    observations: list[dict[str, Any]], type: str, event: str | None = None
) -> dict[str, Any] | None:
    """The first observation of that type (and event name, if given), or None."""
    for observation in observations:
        if observation.get("type") == type and (event is None or observation.get("event") == event):
            return observation
    return None


def events(observations: list[dict[str, Any]], name: str) -> list[list[Any]]:
    """The argument lists of every received `name` event, in arrival order."""
    return [
        list(observation["args"])
        for observation in observations
        if observation.get("type") == "event" and observation.get("event") == name
    ]
