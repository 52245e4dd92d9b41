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
Playwright's `browser.newContext()` as options. A step's optional `"page": NAME` opens (once)
and uses another tab of its context, sharing its cookies, while the first tab keeps running.
Single-element ops are strict (a selector matching several elements is a step error); `texts`
reads every match without waiting.

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

import os
from pathlib import Path
from typing import Any, Final

from .node_scripts import run_json_script
from .provider import INTEROP_DIR, require_tool

BROWSER_SCRIPT: Final = INTEROP_DIR / "browser.mjs"


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
    chromium = os.environ.get("CHROMIUM_PATH") or require_tool("chromium")
    return await run_json_script(
        BROWSER_SCRIPT, script, timeout_s=timeout_s, error=BrowserError, cwd=cwd,
        env={**os.environ, "CHROMIUM_PATH": chromium},
    )  # fmt: skip


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
