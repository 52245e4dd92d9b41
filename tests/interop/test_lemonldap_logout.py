"""Headless Chromium against LemonLDAP::NG 2.16 (Debian's, run by the suite: front-channel
logout only, JWT access tokens without ``sid``, ID tokens without ``sid``): a signed-in page
holds one socket by cookie and one through ``/ssoio/client.js``; signing out at ssoio, and
then (signed in again) at the portal, whose logout page frames
``/auth/frontchannel-logout?iss=...&sid=<sub>``, closes both with ``logged_out``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from ssoio.app import SsoServer

from .browser import run_browser, step_errors, values
from .lemonldap import USERS
from .lemonldap_login import lemonldap_login_setup
from .test_logout_chromium import (
    BOTH_CLOSED,
    BOTH_CONNECTED,
    LAST_CLOSE,
    ME_STATUS,
    PAGE,
    out_at_ssoio_and_back,
)

pytestmark = pytest.mark.interop


def host_app(server: SsoServer, app: ASGIApp) -> ASGIApp:
    async def page(_request: object) -> HTMLResponse:
        return HTMLResponse(PAGE)

    return Starlette(routes=[Route("/app", page), Mount("/", app=app)], lifespan=server.lifespan)


def in_tab(steps: list[dict[str, Any]], page: str) -> list[dict[str, Any]]:
    return [{**step, "page": page} for step in steps]


async def test_signing_out_at_ssoio_and_at_lemonldap_closes_every_socket(tmp_path: Path) -> None:
    user = USERS["dwho"]
    async with lemonldap_login_setup(
        frontchannel_path="/auth/frontchannel-logout", wrap=host_app
    ) as setup:
        provider, url = setup.provider, setup.url
        steps = [
            {"op": "goto", "context": "p", "url": f"{url}/app"},
            {"op": "click", "context": "p", "selector": "#signin"},
            *provider.login_steps("p", user.login),
            {"op": "wait_for_url", "context": "p", "pattern": f"{url}/app"},
            {"op": "wait_for_function", "context": "p", "expression": BOTH_CONNECTED},
            # 1. at ssoio; 2. signed in again (the portal session lives on), out at the portal
            *out_at_ssoio_and_back(url),
            {"op": "eval", "context": "p", "expression": "Date.now()"},
            *in_tab(provider.logout_steps("p"), "portal"),
            {"op": "wait_for_function", "context": "p", "expression": BOTH_CLOSED},
            {"op": "eval", "context": "p", "expression": LAST_CLOSE},
            {"op": "eval", "context": "p", "expression": ME_STATUS},
        ]  # fmt: skip
        run = run_browser({"contexts": {"p": {}}, "steps": steps})
        seen = await asyncio.wait_for(run, 120)
        assert step_errors(seen) == [], (seen, provider.logs)
        assert await setup.sessions(user.sub) == []
    start_1, status, closed_1, me_1, start_2, closed_2, me_2 = values(seen, "eval")
    assert (status, me_1, me_2) == (200, 401, 401)
    print(f"LemonLDAP::NG: logout at ssoio {closed_1 - start_1} ms; "
          f"at the portal {closed_2 - start_2} ms")  # fmt: skip


async def test_a_subject_as_sid_is_believed_only_from_the_portals_page() -> None:
    """LemonLDAP::NG's front-channel ``sid`` is the user's ``sub``, which is no secret: a
    request that does not show the portal's page as its sender ends nothing."""
    user = USERS["rtyler"]
    async with lemonldap_login_setup(frontchannel_path="/auth/frontchannel-logout") as setup:
        provider, url = setup.provider, setup.url
        steps = [
            {"op": "goto", "context": "p", "url": f"{url}/auth/login?next=/auth/me"},
            *provider.login_steps("p", user.login),
            {"op": "wait_for_url", "context": "p", "pattern": f"{url}/auth/me"},
        ]
        assert step_errors(await run_browser({"contexts": {"p": {}}, "steps": steps})) == []
        params = {"iss": provider.issuer, "sid": user.sub}
        front = f"{url}/auth/frontchannel-logout"
        async with httpx.AsyncClient() as http:
            no_referrer = await http.get(front, params=params, headers={
                "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "iframe"})  # fmt: skip
            stranger = await http.get(front, params=params, headers={
                "Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/"})  # fmt: skip
            assert (no_referrer.status_code, stranger.status_code) == (200, 403)
            assert len(await setup.sessions(user.sub)) == 1
            portal = await http.get(front, params=params, headers={
                "Sec-Fetch-Site": "cross-site", "Referer": f"{provider.origin}/"})  # fmt: skip
            assert portal.status_code == 200
            assert await setup.sessions(user.sub) == []
