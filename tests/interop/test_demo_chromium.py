"""The demo in headless Chromium: alice and erin sign in through the development IdP and
chat; presence shows e-mails to staff only; carol (another tenant) cannot join; hostile
chat text stays text; alice kicks erin. Screenshots go to pytest's tmp_path, or to
docs/screenshots/ with SSOIO_UPDATE_SCREENSHOTS=1 (for the README)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from ssoio.demo.app import build_demo, load_demo_settings

from .asgi_server import serve_asgi
from .browser import of_type, run_browser, step_errors, values
from .web_login import free_port

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>alert(2)</script>"
STATUS = "document.getElementById('status').textContent"
LOG = "document.getElementById('log').textContent"
SELECT_GENERAL = "document.getElementById('chat-room').value = 'tenant:acme:general'"


def step(context: str, op: str, **fields: Any) -> dict[str, Any]:
    return {"op": op, "context": context, **fields}


def sign_in(context: str, url: str) -> list[dict[str, Any]]:
    return [
        step(context, "goto", url=f"{url}/"),
        step(context, "wait_for_selector", selector="#signin"),
        step(context, "click", selector="#signin"),
        step(context, "click", selector=f"button[name=username][value={context}]"),
        step(context, "wait_for_url", pattern="/^" + re.escape(f"{url}/") + "$/"),
        step(context, "wait_for_function", timeout_ms=15000,
             expression=f"{STATUS} === 'connected as {context}'"),
    ]  # fmt: skip


def join(context: str, room: str) -> list[dict[str, Any]]:
    return [
        step(context, "fill", selector="#room-input", value=room),
        step(context, "click", selector="#join-form button"),
        step(context, "wait_for_function", expression=f"{LOG}.includes('{room}')"),
    ]


def say(context: str, text: str) -> list[dict[str, Any]]:
    return [
        step(context, "eval", expression=SELECT_GENERAL),
        step(context, "fill", selector="#chat-text", value=text),
        step(context, "click", selector="#chat-form button"),
    ]


def wait_for_message(context: str, count: int) -> dict[str, Any]:
    messages = "document.querySelectorAll('#messages li').length"
    return step(context, "wait_for_function", expression=f"{messages} >= {count}")


def presence(context: str) -> list[dict[str, Any]]:
    return [
        step(context, "eval", expression=SELECT_GENERAL),
        step(context, "click", selector="#presence-refresh"),
        step(context, "wait_for_selector", selector="#presence tbody tr"),
        step(context, "texts", selector="#presence tbody tr"),
    ]  # fmt: skip


async def test_demo_end_to_end(tmp_path: Path) -> None:
    shots = (
        ROOT / "docs" / "screenshots" if os.environ.get("SSOIO_UPDATE_SCREENSHOTS") else tmp_path
    )
    shots.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = load_demo_settings(ROOT / "config" / "ssoio.example.toml", "127.0.0.1", port)
    demo = build_demo(settings, ROOT / "config" / "dev-users.toml")
    async with serve_asgi(demo.app, port=port, lifespan="on", ws="websockets-sansio") as url:
        steps = [
            *sign_in("alice", url), *sign_in("erin", url),
            *join("alice", "tenant:acme:general"), *join("erin", "tenant:acme:general"),
            *say("alice", "hello erin"), wait_for_message("erin", 1),
            *say("erin", XSS_IMG), *say("alice", XSS_SCRIPT), wait_for_message("erin", 3),
            wait_for_message("alice", 3),
            step("erin", "texts", selector="#messages li"),
            *presence("alice"), *presence("erin"),
            step("alice", "screenshot", path=str(shots / "demo-alice.png")),
            step("erin", "screenshot", path=str(shots / "demo-erin.png")),
            *sign_in("carol", url),
            step("carol", "fill", selector="#room-input", value="tenant:acme:general"),
            step("carol", "click", selector="#join-form button"),
            step("carol", "wait_for_selector", selector="#log li.refused"),
            step("carol", "text", selector="#log li.refused"),
            step("alice", "fill", selector="#kick-sub", value="erin"),
            step("alice", "click", selector="#kick-form button"),
            step("erin", "wait_for_function", timeout_ms=10000,
                 expression=f"{STATUS}.includes('kicked')"),
            step("erin", "text", selector="#status"),
            step("alice", "text", selector="#status"),
        ]  # fmt: skip
        contexts = {"alice": {"viewport": {"width": 1280, "height": 900}}, "erin": {}, "carol": {}}
        seen = await run_browser({"contexts": contexts, "steps": steps}, timeout_s=120)

    assert step_errors(seen) == [], step_errors(seen)[0]["message"]
    assert of_type(seen, "dialog") == []  # the hostile chat text ran nothing
    assert of_type(seen, "pageerror") == []
    erin_messages = values(seen, "texts", context="erin")[0]
    assert erin_messages == ["alicehello erin", f"erin{XSS_IMG}", f"alice{XSS_SCRIPT}"]
    alice_presence, erin_presence = (
        values(seen, "texts", context="alice")[0],
        values(seen, "texts", context="erin")[1],
    )
    assert any("alice@acme.example" in row for row in alice_presence)
    assert any("erin@acme.example" in row for row in alice_presence)
    assert not any("@" in row for row in erin_presence)
    carol_refusal = values(seen, "text", context="carol")[0]
    assert "forbidden" in carol_refusal
    assert values(seen, "text", context="erin")[-1] == "disconnected: kicked"
    assert values(seen, "text", context="alice")[-1] == "connected as alice"
    assert (shots / "demo-alice.png").stat().st_size > 10_000


async def test_the_page_refreshes_its_token_in_band() -> None:
    # 63 s tokens with the default 60 s warning: auth:expiring comes ~3 s after connecting
    port = free_port()
    settings = load_demo_settings(ROOT / "config" / "ssoio.example.toml", "127.0.0.1", port)
    demo = build_demo(settings, ROOT / "config" / "dev-users.toml", at_ttl=63)
    async with serve_asgi(demo.app, port=port, lifespan="on", ws="websockets-sansio") as url:
        steps = [
            *sign_in("bob", url),
            step("bob", "wait_for_function", timeout_ms=15000,
                 expression=f"{LOG}.includes('refreshing')"),
            step("bob", "sleep", ms=1500),
            step("bob", "texts", selector="#log li"),
            step("bob", "text", selector="#status"),
        ]  # fmt: skip
        seen = await run_browser({"contexts": {"bob": {}}, "steps": steps}, timeout_s=60)
    assert step_errors(seen) == []
    assert not any("signed out" in line for line in values(seen, "texts")[0])
    assert values(seen, "text") == ["connected as bob"]
    assert demo.sso.metrics is not None  # the server swapped the connection's token in-band
    assert (
        'ssoio_security_events_total{kind="token_refresh"} 1.0'
        in demo.sso.metrics.render().decode()
    )
