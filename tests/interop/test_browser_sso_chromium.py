"""Headless Chromium (Debian's, driven by playwright-core): sign in through the
provider's own page and see a live socket event on a page of the same origin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import FileResponse, HTMLResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from ssoio.app import SsoServer

from .browser import first, run_browser, step_errors, values
from .web_login import login_setup

pytestmark = pytest.mark.interop

STATUS_IS = "document.getElementById('status').textContent === "
CLIENT_JS = (
    Path(__file__).parent / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
)

PAGE = """<!doctype html><meta charset=utf-8><title>app</title>
<p id=status>starting</p><a id=signin href="/auth/login?next=/app">Sign in</a><ul id=events></ul>
<script src="/socket.io.js"></script>
<script>
fetch("/auth/me").then(async (r) => {
  const status = document.getElementById("status");
  if (r.status !== 200) { status.textContent = "signed out"; return; }
  const me = await r.json();
  const socket = io({ withCredentials: true, transports: ["websocket"] });  // the cookie
  socket.on("connect", () => { status.textContent = "connected as " + me.sub; });
  socket.on("connect_error", (e) => { status.textContent = "refused " + e.message; });
  socket.on("memo", (m) => {
    const li = document.createElement("li"); li.textContent = m.text;
    document.getElementById("events").appendChild(li);
  });
});
</script>"""


def host_app(sso: SsoServer) -> ASGIApp:
    async def page(_request: object) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def client_js(_request: object) -> FileResponse:
        return FileResponse(CLIENT_JS, media_type="text/javascript")

    routes = [Route("/app", page), Route("/socket.io.js", client_js), Mount("/", app=sso.asgi_app)]
    return Starlette(routes=routes, lifespan=sso.lifespan)


async def test_sign_in_through_the_provider_page_and_see_a_socket_event(tmp_path: Path) -> None:
    async with login_setup(wrap=host_app) as setup:
        steps = [
            {"op": "goto", "context": "alice", "url": f"{setup.url}/app"},
            {"op": "wait_for_function", "context": "alice",
             "expression": STATUS_IS + "'signed out'"},
            {"op": "click", "context": "alice", "selector": "#signin"},
            {"op": "fill", "context": "alice", "selector": "input[name=username]",
             "value": "alice"},
            {"op": "fill", "context": "alice", "selector": "input[name=password]",
             "value": "alice-pw"},
            {"op": "click", "context": "alice", "selector": "button[type=submit]"},
            {"op": "wait_for_url", "context": "alice", "pattern": f"{setup.url}/app"},
            {"op": "wait_for_function", "context": "alice", "timeout_ms": 15000,
             "expression": STATUS_IS + "'connected as alice'"},
            {"op": "wait_for_selector", "context": "alice", "selector": "#events li",
             "timeout_ms": 15000},
            {"op": "text", "context": "alice", "selector": "#events li"},
            {"op": "cookies", "context": "alice"},
            {"op": "screenshot", "context": "alice", "path": str(tmp_path / "signed-in.png")},
        ]  # fmt: skip
        run = asyncio.create_task(run_browser({"contexts": {"alice": {}}, "steps": steps}))
        for _ in range(300):  # until alice's page has connected its socket: bounded (~30 s)
            if any(c.principal.subject == "alice" for c in setup.server.gateway.connections):
                break
            if run.done():
                break
            await asyncio.sleep(0.1)
        await setup.server.emit("memo", {"text": "hello from the server"}, room="user:alice")
        seen = await asyncio.wait_for(run, 90)
    assert step_errors(seen) == [], seen
    assert values(seen, "text") == ["hello from the server"]
    cookies = first(seen, "cookies")
    assert cookies is not None
    session = [c for c in cookies["value"] if c["name"] == "ssoio_session"]
    assert len(session) == 1
    assert session[0]["httpOnly"] is True
    assert session[0]["sameSite"] == "Lax"
    assert (tmp_path / "signed-in.png").stat().st_size > 0
