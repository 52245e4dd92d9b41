"""The headless-Chromium harness itself, proven against a tiny Starlette app on 127.0.0.1.

The browser tests trust run_browser's observations: these tests show that a form login keeps
an HttpOnly cookie in its own context only, that the dialog record tells a script that ran
from one that did not (the XSS checks rely on it), and that a failing step stops the run fast.
"""

from __future__ import annotations

import html
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .asgi_server import serve_asgi
from .browser import BrowserError, first, of_type, run_browser, step_errors, values

pytestmark = pytest.mark.interop

SESSION_COOKIE = "harness_sid"
XSS_PAYLOAD = "<img src=x onerror=alert(1)>"
FAST_STEP_TIMEOUT_MS = 300
FAST_RUN_LIMIT_S = 20.0
# Every run is bounded well below run_browser's own 90 s.
BOUNDS: dict[str, Any] = {"timeout_ms": 30_000, "step_timeout_ms": 5_000}

LOGIN_PAGE = """<!doctype html>
<title>Sign in</title>
<form method="post" action="/login">
  <input id="username" name="username" autocomplete="off">
  <input id="password" name="password" type="password">
  <button id="submit" type="submit">Sign in</button>
</form>"""

RENDER_PAGE = """<!doctype html>
<title>render</title>
<p id="out"></p>
<script>
  const out = document.getElementById("out");
  out.{sink} = {payload};
  // Registered after the payload's own onerror attribute, so it runs after that handler
  // (and after the alert it raised was dismissed): a bounded wait for the payload's effect.
  for (const img of out.querySelectorAll("img")) {{
    img.addEventListener("error", () => {{ window.imgFailed = true; }});
  }}
  window.rendered = true;
  console.log("rendered with {sink}");
</script>"""

BROKEN_PAGE = """<!doctype html>
<title>broken</title>
<script>console.warn("about to fail"); throw new Error("boom from the page");</script>"""


def _build_app() -> Starlette:
    sessions: dict[str, str] = {}

    async def login_form(request: Request) -> Response:
        return HTMLResponse(LOGIN_PAGE)

    async def login(request: Request) -> Response:
        form = await request.form()
        username = str(form.get("username", ""))
        if not username or form.get("password") != f"{username}-pw":
            return HTMLResponse("<p id='error'>wrong credentials</p>", status_code=401)
        sid = secrets.token_urlsafe(24)
        sessions[sid] = username
        response = RedirectResponse("/home", status_code=303)
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="lax", path="/")
        return response

    async def home(request: Request) -> Response:
        username = sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        text = f"Signed in as {username}" if username else "anonymous"
        return HTMLResponse(f"<!doctype html><title>home</title><p id='user'>{html.escape(text)}")

    def render(sink: str) -> Response:
        # json.dumps makes a JS string literal; the payload holds no "</script>".
        return HTMLResponse(RENDER_PAGE.format(sink=sink, payload=json.dumps(XSS_PAYLOAD)))

    async def safe(request: Request) -> Response:
        return render("textContent")

    async def unsafe(request: Request) -> Response:
        return render("innerHTML")

    async def broken(request: Request) -> Response:
        return HTMLResponse(BROKEN_PAGE)

    return Starlette(
        routes=[
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/home", home),
            Route("/safe", safe),
            Route("/unsafe", unsafe),
            Route("/broken", broken),
        ]
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def site() -> AsyncIterator[str]:
    async with serve_asgi(_build_app()) as url:
        yield url


def _login(context: str, url: str, username: str, *, submit_with_enter: bool) -> list[Any]:
    submit: dict[str, Any] = (
        {"op": "press", "context": context, "selector": "#password", "key": "Enter"}
        if submit_with_enter
        else {"op": "click", "context": context, "selector": "#submit"}
    )
    return [
        {"op": "goto", "context": context, "url": f"{url}/login"},
        {"op": "fill", "context": context, "selector": "#username", "value": username},
        {"op": "fill", "context": context, "selector": "#password", "value": f"{username}-pw"},
        submit,
        {"op": "wait_for_url", "context": context, "pattern": "/\\/home$/"},
    ]


async def test_form_login_sets_an_httponly_cookie_per_context(site: str, tmp_path: Path) -> None:
    steps = [
        *_login("alice", site, "alice", submit_with_enter=False),
        {"op": "text", "context": "alice", "selector": "#user"},  # 5
        {"op": "cookies", "context": "alice"},  # 6
        {"op": "eval", "context": "alice", "expression": "document.cookie"},  # 7
        {"op": "screenshot", "context": "alice", "path": "home.png"},  # 8
        {"op": "goto", "context": "erin", "url": f"{site}/home"},  # 9
        {"op": "text", "context": "erin", "selector": "#user"},  # 10
        {"op": "cookies", "context": "erin"},  # 11
        *_login("erin", site, "erin", submit_with_enter=True),  # 12-16
        {"op": "text", "context": "erin", "selector": "#user"},  # 17
        {"op": "goto", "context": "alice", "url": f"{site}/home"},  # 18
        {"op": "text", "context": "alice", "selector": "#user"},  # 19
        {"op": "attribute", "context": "alice", "selector": "#user", "name": "id"},  # 20
    ]
    observations = await run_browser(
        {"contexts": {"alice": {}, "erin": {}}, "steps": steps, **BOUNDS}, cwd=tmp_path
    )

    assert step_errors(observations) == []
    assert first(observations, "url", step=4) == {
        "type": "url",
        "step": 4,
        "context": "alice",
        "value": f"{site}/home",
    }
    assert values(observations, "text", context="alice") == [
        "Signed in as alice",
        "Signed in as alice",
    ]
    assert values(observations, "text", context="erin") == ["anonymous", "Signed in as erin"]

    alice_cookies, erin_before = values(observations, "cookies")
    assert erin_before == []  # a context does not see another's cookies
    (cookie,) = alice_cookies
    assert cookie["name"] == SESSION_COOKIE
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False
    assert cookie["domain"] == "127.0.0.1"
    assert cookie["path"] == "/"
    assert cookie["expires"] == -1  # a session cookie
    assert cookie["value_length"] == 32
    assert "value" not in cookie  # secrets stay out of the logs
    assert values(observations, "eval") == [""]  # HttpOnly: invisible to page scripts
    assert values(observations, "attribute") == ["user"]

    shot = first(observations, "screenshot")
    assert shot is not None
    assert shot["path"] == "home.png"
    png = (tmp_path / "home.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) == shot["bytes"] > 0
    assert observations[-1] == {"type": "done"}


async def test_dialog_record_tells_an_executed_payload_from_an_inert_one(site: str) -> None:
    steps: list[dict[str, Any]] = []
    for context, path in (("inert", "/safe"), ("executed", "/unsafe")):
        steps += [
            {"op": "goto", "context": context, "url": f"{site}{path}"},
            {"op": "wait_for_function", "context": context, "expression": "window.rendered"},
            {"op": "text", "context": context, "selector": "#out"},
            {
                "op": "eval",
                "context": context,
                "expression": "document.querySelectorAll('#out img').length",
            },
        ]
    steps.append(
        {"op": "wait_for_function", "context": "executed", "expression": "window.imgFailed"}
    )
    observations = await run_browser(
        {"contexts": {"inert": {}, "executed": {}}, "steps": steps, **BOUNDS}
    )

    assert step_errors(observations) == []
    # textContent: the payload is text, no element, no script ran.
    assert values(observations, "text", context="inert") == [XSS_PAYLOAD]
    assert values(observations, "eval", context="inert") == [0]
    assert of_type(observations, "dialog", context="inert") == []
    # innerHTML: the img element exists and its onerror ran alert(1), recorded and dismissed.
    assert values(observations, "text", context="executed") == [""]
    assert values(observations, "eval", context="executed") == [1]
    assert of_type(observations, "dialog", context="executed") == [
        {"type": "dialog", "context": "executed", "dialog_type": "alert", "message": "1"}
    ]
    consoles = [(o["context"], o["level"], o["text"]) for o in of_type(observations, "console")]
    assert ("inert", "log", "rendered with textContent") in consoles
    assert ("executed", "log", "rendered with innerHTML") in consoles


async def test_console_messages_and_page_errors_are_recorded(site: str) -> None:
    observations = await run_browser(
        {
            "contexts": {"page": {}},
            "steps": [
                {"op": "goto", "context": "page", "url": f"{site}/broken"},
                {
                    "op": "wait_for_function",
                    "context": "page",
                    "expression": "document.readyState === 'complete'",
                },
            ],
            **BOUNDS,
        }
    )

    assert step_errors(observations) == []
    assert {"type": "console", "context": "page", "level": "warning", "text": "about to fail"} in (
        observations
    )
    (error,) = of_type(observations, "pageerror")
    assert "boom from the page" in error["message"]
    assert first(observations, "goto") == {
        "type": "goto",
        "step": 0,
        "context": "page",
        "url": f"{site}/broken",
        "status": 200,
    }


async def test_a_missing_selector_is_a_fast_step_error_that_ends_the_steps(site: str) -> None:
    started = time.monotonic()
    observations = await run_browser(
        {
            "contexts": {"alice": {}},
            "steps": [
                {"op": "goto", "context": "alice", "url": f"{site}/login"},
                {
                    "op": "click",
                    "context": "alice",
                    "selector": "#no-such-button",
                    "timeout_ms": FAST_STEP_TIMEOUT_MS,
                },
                {"op": "text", "context": "alice", "selector": "#username"},
            ],
            **BOUNDS,
        }
    )
    elapsed = time.monotonic() - started

    (error,) = step_errors(observations)
    assert error["step"] == 1
    assert error["op"] == "click"
    assert error["context"] == "alice"
    assert f"Timeout {FAST_STEP_TIMEOUT_MS}ms exceeded" in error["message"]
    assert "#no-such-button" in error["message"]
    assert "\x1b" not in error["message"]  # no terminal colours in the record
    assert [o for o in observations if o.get("step") == 2] == []  # later steps did not run
    assert observations[-2:] == [error, {"type": "done"}]
    assert elapsed < FAST_RUN_LIMIT_S


async def test_a_broken_script_is_a_harness_error() -> None:
    with pytest.raises(BrowserError, match=r"(?s)exited with 1.*unknown op teleport"):
        await run_browser(
            {"contexts": {"alice": {}}, "steps": [{"op": "teleport", "context": "alice"}]}
        )
    with pytest.raises(BrowserError, match=r"(?s)exited with 1.*unknown context bob"):
        await run_browser(
            {"contexts": {"alice": {}}, "steps": [{"op": "cookies", "context": "bob"}]}
        )


async def test_the_global_timeout_ends_the_run() -> None:
    with pytest.raises(BrowserError, match=r"(?s)exited with 2.*global timeout of 1500 ms"):
        await run_browser(
            {
                "contexts": {"alice": {}},
                "steps": [{"op": "sleep", "context": "alice", "ms": 30_000}],
                "timeout_ms": 1_500,
            },
            timeout_s=20,
        )
