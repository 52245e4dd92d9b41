"""Drive headless Chromium (Debian's package, through playwright-core; browser.mjs) from tests.

Browser tests must see what a person's browser does: redirects followed, cookies kept per
browser profile (HttpOnly, SameSite), scripts run or not run. A script goes in on stdin and a
list of observations comes back:

script::

    {"contexts": {"alice": {}, "erin": {"viewport": {"width": 800, "height": 600}}},
     "steps": [
        {"op": "goto", "context": "alice", "url": URL},
        {"op": "fill", "context": "alice", "selector": "#user", "value": "alice"},
        {"op": "click", "context": "alice", "selector": "button[type=submit]"},
        {"op": "press", "context": "alice", "selector": "#user", "key": "Enter"},
        {"op": "wait_for_selector", "context": "alice", "selector": "#ok",
         "state": "visible", "timeout_ms": 5000},          # state: attached|detached|visible|hidden
        {"op": "wait_for_url", "context": "alice", "pattern": "/welcome"},  # a substring, or
        {"op": "wait_for_url", "context": "alice", "pattern": "/[?&]code=/i"},  # "/regex/flags"
        {"op": "text", "context": "alice", "selector": "#name"},
        {"op": "texts", "context": "alice", "selector": "li"},
        {"op": "attribute", "context": "alice", "selector": "a", "name": "href"},
        {"op": "eval", "context": "alice", "expression": "document.title"},
        {"op": "wait_for_function", "context": "alice", "expression": "window.ready === true"},
        {"op": "screenshot", "context": "alice", "path": "page.png"},  # relative to `cwd`
        {"op": "cookies", "context": "alice"},              # optional "urls": [...]
        {"op": "sleep", "context": "alice", "ms": 100}],
     "timeout_ms": 60000,          # the whole run (default 60 s)
     "step_timeout_ms": 10000}     # default bound of each waiting step; a step's timeout_ms wins

Each context is its own browser context (cookie jar, storage) with one page; its value goes to
Playwright's `browser.newContext()` as options. Single-element ops are strict (a selector
matching several elements is a step error); `texts` reads every match without waiting.

observations (in arrival order, `{"type": "done"}` last)::

    {"type": "goto", "step": I, "context": C, "url": FINAL_URL, "status": 200}
    {"type": "url", "step": I, "context": C, "value": URL}             # wait_for_url
    {"type": "text" | "texts" | "attribute" | "eval" | "wait_for_function",
     "step": I, "context": C, "value": VALUE}
    {"type": "screenshot", "step": I, "context": C, "path": PATH, "bytes": N}
    {"type": "cookies", "step": I, "context": C, "value": [{"name", "value_length", "domain",
     "path", "httpOnly", "secure", "sameSite", "expires"}]}   # never the cookie's value
    {"type": "console", "context": C, "level": "log" | "error" | ..., "text": TEXT}
    {"type": "pageerror", "context": C, "message": MSG}
    {"type": "dialog", "context": C, "dialog_type": "alert" | ..., "message": MSG}  # dismissed
    {"type": "requestfailed", "context": C, "url": URL, "failure": "net::..."}
    {"type": "step_error", "step": I, "context": C, "op": OP, "message": MSG}  # ends the steps
    {"type": "done"}

A failing step (timeout, missing element, navigation error) is an observation; a broken script
(bad JSON, unknown op or context), a failed launch or the global timeout raise `BrowserError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any, Final

from .provider import INTEROP_DIR, ensure_node_modules, require_tool

BROWSER_SCRIPT: Final = INTEROP_DIR / "browser.mjs"
STOP_TIMEOUT_S: Final = 5.0
STDERR_KEEP_BYTES: Final = 64 * 1024
TAIL_CHARS: Final = 4000


class BrowserError(RuntimeError):
    """The browser harness failed (not the page under test: step errors are observations)."""


async def run_browser(
    script: dict[str, Any], *, timeout_s: float = 90, cwd: Path | None = None
) -> list[dict[str, Any]]:
    """Run one scripted Chromium session; returns its observations, `done` last.

    `timeout_s` bounds the whole node process; keep it above the script's own `timeout_ms`
    (60 s by default) so that node reports its timeout itself. Screenshot paths are relative to
    `cwd` (default: tests/interop).
    """
    node = require_tool("node")
    chromium = os.environ.get("CHROMIUM_PATH") or require_tool("chromium")
    ensure_node_modules()
    process = await asyncio.create_subprocess_exec(
        node,
        str(BROWSER_SCRIPT),
        cwd=cwd or INTEROP_DIR,
        env={**os.environ, "CHROMIUM_PATH": chromium},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = bytearray(), bytearray()
    try:
        await asyncio.wait_for(_converse(process, script, stdout, stderr), timeout_s)
    except TimeoutError as exc:
        raise BrowserError(
            f"node browser.mjs did not finish within {timeout_s:g} s{_tail(stderr)}"
        ) from exc
    finally:
        await _terminate(process)
    if process.returncode != 0:
        raise BrowserError(
            f"node browser.mjs exited with {process.returncode}{_tail(stderr)}\n"
            f"stdout so far:\n{stdout.decode('utf-8', 'replace')[-TAIL_CHARS:]}"
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
    """SIGTERM (browser.mjs closes Chromium and its temp profile), then SIGKILL after a bound."""
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
    text = bytes(stderr).decode("utf-8", "replace")[-TAIL_CHARS:]
    return f"; stderr tail:\n{text}" if text else " (no stderr)"


def _parse(stdout: bytearray, stderr: bytearray) -> list[dict[str, Any]]:
    """One JSON object per line; anything else means the harness misbehaved."""
    observations: list[dict[str, Any]] = []
    for line in stdout.decode("utf-8", "replace").splitlines():
        try:
            observation = json.loads(line)
        except ValueError as exc:
            raise BrowserError(f"non-JSON line on stdout: {line[:200]!r}{_tail(stderr)}") from exc
        if not isinstance(observation, dict):
            raise BrowserError(f"stdout line is not an object: {line[:200]!r}{_tail(stderr)}")
        observations.append(observation)
    if not observations or observations[-1] != {"type": "done"}:
        raise BrowserError(f"the run did not end with a done observation{_tail(stderr)}")
    return observations


def first(
    observations: list[dict[str, Any]], type: str, *, step: int | None = None
) -> dict[str, Any] | None:
    """The first observation of that type (and step index, if given), or None."""
    for observation in observations:
        if observation.get("type") == type and (step is None or observation.get("step") == step):
            return observation
    return None


def step_errors(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every `step_error` observation (at most one: the first failing step ends the run)."""
    return [observation for observation in observations if observation.get("type") == "step_error"]


def values(
    observations: list[dict[str, Any]], type: str, *, context: str | None = None
) -> list[Any]:
    """The `value` of every observation of that type (and context, if given), in order."""
    return [
        observation.get("value")
        for observation in observations
        if observation.get("type") == type
        and (context is None or observation.get("context") == context)
    ]


def of_type(
    observations: list[dict[str, Any]], type: str, *, context: str | None = None
) -> list[dict[str, Any]]:
    """Every observation of that type (and context, if given): dialogs, console, pageerror."""
    return [
        observation
        for observation in observations
        if observation.get("type") == type
        and (context is None or observation.get("context") == context)
    ]
