"""Connection state recovery of sockets that belong to a browser session (a token handed
out by ``/auth/token``), end to end: the node OpenID Provider's real sign-in and its
back-channel logout POST, an ssoio node on 127.0.0.1 and the official socket.io-client
4.8. Access tokens carry no ``sid`` here: the hand-off alone ties a token to its session.

* a logout at the provider while the socket is away: the token is refused on reconnect
  (``token_revoked``), the session never recovers, not even with another valid token;
* the same person signed in through two browsers: a socket of the first, reconnecting
  with the second browser's token, is a fresh connect (``browser_session_mismatch``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.support.transport_path import ssoio_only

from .provider import UserLogin, jwt_payload
from .recovery_client import GENERAL, RECORDED, RECOVERY, connects, join, messages, while_away
from .web_login import Browser, LoginSetup, login_setup

pytestmark = [pytest.mark.interop, ssoio_only(RECOVERY)]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def setup() -> AsyncIterator[LoginSetup]:
    async with login_setup(access_token_sid=False, recovery={"enabled": True}) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def browsers(setup: LoginSetup) -> AsyncIterator[tuple[Browser, Browser]]:
    first, second = Browser(setup.url), Browser(setup.url)
    yield first, second
    await first.close()
    await second.close()


async def handed_off(browser: Browser, user: str) -> str:
    """Sign ``user`` in with ``browser``; the access token ``/auth/token`` hands out."""
    await browser.sign_in(user)
    token = str((await browser.http.get(f"{browser.origin}/auth/token")).json()["access_token"])
    assert "sid" not in jwt_payload(token)  # only the hand-off ties it to the session
    return token


def away_script(
    url: str, token: str, signals: Path, reconnect: list[dict[str, Any]]
) -> dict[str, Any]:
    """Connect with ``token``, join the tenant room, lose the transport (no reconnection of
    its own), tell the test, wait for its ``go``, then the ``reconnect`` steps."""
    return {
        "url": url,
        "options": {"transports": ["websocket"], "auth": {"token": token}},
        "steps": [
            {"op": "connect"}, join(GENERAL),
            {"op": "close_transport"}, {"op": "sleep", "ms": 100},
            {"op": "write_file", "path": str(signals / "closed")},
            {"op": "wait_file", "path": str(signals / "go"), "timeout_ms": 15000},
            *reconnect,
        ],
        "record": RECORDED,
        "timeout_ms": 30000,
    }  # fmt: skip


async def missed_events(setup: LoginSetup) -> None:
    for number in range(5):
        text = {"room": GENERAL, "text": f"m{number}"}
        await setup.server.emit("chat:message", text, room=GENERAL)


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The reasons of the ``recovery.refused`` audit lines."""
    lines = [getattr(r, "audit", {}) for r in caplog.records if r.name == "ssoio.audit"]
    return [line["reason"] for line in lines if line.get("event") == "recovery.refused"]


async def test_a_logout_at_the_provider_while_away_ends_the_session_for_good(
    setup: LoginSetup, browsers: tuple[Browser, Browser], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The provider POSTs its back-channel logout while the socket is away: the reconnect
    with the session's token is refused (``token_revoked``), one with another valid token
    of the same person and the old pid is a fresh connect, and nothing missed leaks."""
    browser, _ = browsers
    token = await handed_off(browser, "bob")
    fresh = (await setup.idp.user_tokens("bob"))["access_token"]  # not the session's
    script = away_script(setup.url, token, tmp_path, [
        {"op": "connect"},  # its own token and pid: refused
        {"op": "set_auth", "auth": {"token": fresh}},
        {"op": "connect"},  # another token of bob's, the old pid: not recovered
        {"op": "sleep", "ms": 800},
    ])  # fmt: skip

    async def logout_at_the_provider() -> None:
        # the provider POSTs /auth/backchannel-logout before it answers the logout
        await setup.idp.end_session(UserLogin(tokens={}, cookies=browser.http.cookies))
        assert (await browser.http.get(f"{setup.url}/auth/me")).status_code == 401
        await missed_events(setup)

    with caplog.at_level(logging.INFO, logger="ssoio.audit"):
        observations = await while_away(script, tmp_path, logout_at_the_provider)
    errors = [o for o in observations if o["type"] == "connect_error"]
    assert [e["data"]["code"] for e in errors] == ["token_revoked"]
    assert [c["recovered"] for c in connects(observations)] == [False, False]
    assert messages(observations) == []
    # the session record was forgotten at the logout (not refused for another reason)
    assert refusals(caplog) == ["unknown_session"]


async def test_another_browser_sessions_token_does_not_recover_the_socket(
    setup: LoginSetup, browsers: tuple[Browser, Browser], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Alice signed in through two browsers: a socket of the first goes away, and a
    reconnect presents the second browser's token with the first one's pid. Same issuer
    and sub, another browser session: a fresh connect, none of the missed events."""
    first, second = browsers
    token_1, token_2 = await handed_off(first, "alice"), await handed_off(second, "alice")
    assert first.session_cookie != second.session_cookie
    script = away_script(setup.url, token_1, tmp_path, [
        {"op": "set_auth", "auth": {"token": token_2}},
        {"op": "connect"},
        {"op": "emit", "event": "room:join", "args": [{"room": GENERAL}], "ack": True},
        {"op": "sleep", "ms": 800},
    ])  # fmt: skip
    with caplog.at_level(logging.INFO, logger="ssoio.audit"):
        observations = await while_away(script, tmp_path, lambda: missed_events(setup))
    assert "connect_error" not in [o["type"] for o in observations]
    assert [c["recovered"] for c in connects(observations)] == [False, False]
    assert messages(observations) == []
    assert refusals(caplog) == ["browser_session_mismatch"]
    # it connected normally: an ordinary socket of the second session
    acks = [o for o in observations if o["type"] == "ack"]
    assert acks[-1]["args"] == [{"ok": True, "room": GENERAL}]
