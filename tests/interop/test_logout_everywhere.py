"""Every way a browser session ends closes every socket of it (issue: sessions that end
everywhere), against the node OpenID Provider issuing access tokens WITHOUT ``sid`` (as
LemonLDAP::NG, Okta and Auth0 do), and uvicorn on 127.0.0.1.

Sockets opened with a token ``/auth/token`` handed out are tied to their session by the
token's fingerprint only: these tests fail if that binding is missing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio

from ssoio.web.sessions import WebSession

from .provider import UserLogin, jwt_payload
from .ssoio_server import Client
from .web_login import Browser, LoginSetup, login_setup

pytestmark = pytest.mark.interop

FRONT = "/auth/frontchannel-logout"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def setup() -> AsyncIterator[LoginSetup]:
    # (a small front-channel bucket, for the flood test)
    limits = {"logouts_per_ip": {"rate": 5, "burst": 300}}
    async with login_setup(access_token_sid=False, landing=True, limits=limits) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def browser(setup: LoginSetup) -> AsyncIterator[Browser]:
    browser = Browser(setup.url)
    yield browser
    await browser.close()


async def signed_in(browser: Browser, user: str) -> tuple[str, str]:
    """Sign ``user`` in; (the session cookie, a handed-off access token without sid)."""
    await browser.sign_in(user)
    token = (await browser.http.get(f"{browser.origin}/auth/token")).json()["access_token"]
    assert "sid" not in jwt_payload(token)  # the case this file is about
    cookie = browser.session_cookie
    assert cookie is not None
    return cookie, token


async def sockets_of(setup: LoginSetup, cookie: str, token: str) -> tuple[Client, Client]:
    by_cookie, by_token = Client(setup.url), Client(setup.url)
    assert await by_cookie.connect(None, headers={"Cookie": f"ssoio_session={cookie}"})
    assert await by_token.connect(token)
    return by_cookie, by_token


async def all_closed(*clients: Client, timeout_s: float = 10) -> float:
    """Wait (bounded) until each client was told logged_out and disconnected; seconds."""
    started = time.monotonic()
    for client in clients:
        assert await client.wait_for("auth:revoked", timeout_s=timeout_s) == [
            {"code": "logged_out"}
        ]
        await asyncio.wait_for(client.disconnected.wait(), timeout_s)
    return time.monotonic() - started


async def session_of(setup: LoginSetup, user: str) -> WebSession:
    login = setup.server.login
    assert login is not None
    [session_id] = await login.store.find(login.client.issuer.name, subject=user)
    session = await login.store.load(session_id)
    assert session is not None
    assert session.idp_session
    return session


async def close(*clients: Client) -> None:
    for client in clients:
        await client.close()


# -- local logout ----------------------------------------------------------------------------


async def test_logout_closes_the_handed_off_tokens_socket_and_the_token_dies(
    browser: Browser, setup: LoginSetup
) -> None:
    cookie, token = await signed_in(browser, "erin")
    by_cookie, by_token = await sockets_of(setup, cookie, token)
    other = Client(setup.url)  # a socket of the same person opened another way
    try:
        other_token = (await setup.idp.user_tokens("erin"))["access_token"]
        assert await other.connect(other_token)
        assert (await by_token.call("chat:send", {"room": "tenant:acme:general", "text": "hi"}))[
            "ok"
        ]
        out = await browser.http.post(f"{setup.url}/auth/logout", headers={"Origin": setup.url})
        assert out.status_code == 303
        await all_closed(by_cookie, by_token)
        assert (await browser.http.get(f"{setup.url}/auth/me")).status_code == 401
        # the stolen token, replayed: refused on connect and on auth:refresh, although the
        # provider would still call it valid
        replay = Client(setup.url)
        assert not await replay.connect(token)
        assert replay.connect_error["data"]["code"] == "token_revoked"
        await replay.close()
        refreshed = await other.call("auth:refresh", {"token": token})
        assert refreshed["error"]["code"] == "token_revoked"
        old_cookie = Client(setup.url)
        assert not await old_cookie.connect(None, headers={"Cookie": f"ssoio_session={cookie}"})
        assert old_cookie.connect_error["data"]["code"] == "token_missing"
        await old_cookie.close()
        # the socket opened with a token from elsewhere is not this session's
        assert not other.disconnected.is_set()
    finally:
        await close(by_cookie, by_token, other)


async def test_a_socket_adopts_the_session_of_a_handed_off_token_it_refreshes_to(
    browser: Browser, setup: LoginSetup
) -> None:
    _cookie, token = await signed_in(browser, "bob")
    socket = Client(setup.url)
    try:
        assert await socket.connect((await setup.idp.user_tokens("bob"))["access_token"])
        assert (await socket.call("auth:refresh", {"token": token}))["ok"]
        await browser.http.post(f"{setup.url}/auth/logout", headers={"Origin": setup.url})
        await all_closed(socket)
    finally:
        await close(socket)


# -- at the provider -------------------------------------------------------------------------


async def test_backchannel_logout_closes_handed_off_sockets_without_sid(
    browser: Browser, setup: LoginSetup
) -> None:
    cookie, token = await signed_in(browser, "carol")
    sockets = await sockets_of(setup, cookie, token)
    try:
        started = time.monotonic()
        await setup.idp.end_session(UserLogin(tokens={}, cookies=browser.http.cookies))
        await all_closed(*sockets)
        logging.getLogger(__name__).info("backchannel: %.3f s", time.monotonic() - started)
        replay = Client(setup.url)
        assert not await replay.connect(token)
        assert replay.connect_error["data"]["code"] == "token_revoked"
        await replay.close()
    finally:
        await close(*sockets)


async def test_a_refresh_refused_after_logout_at_the_provider_means_logged_out() -> None:
    # no back-channel: the provider's logout is seen at the next refresh (every hand-off
    # refreshes here: the margin exceeds the token's life)
    async with login_setup(backchannel=False, access_token_sid=False,
                           login={"refresh_margin_s": 600}) as setup:  # fmt: skip
        browser = Browser(setup.url)
        try:
            cookie, token = await signed_in(browser, "alice")
            sockets = await sockets_of(setup, cookie, token)
            await setup.idp.end_session(UserLogin(tokens={}, cookies=browser.http.cookies))
            assert not any(s.disconnected.is_set() for s in sockets)  # nobody told us yet
            answer = await browser.http.get(f"{setup.url}/auth/token")
            assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_missing")
            await all_closed(*sockets)
        finally:
            await browser.close()
            await close(*sockets)


async def test_session_check_bounds_the_delay_without_any_logout_channel() -> None:
    async with login_setup(backchannel=False, access_token_sid=False,
                           login={"session_check_s": 1}) as setup:  # fmt: skip
        browser = Browser(setup.url)
        sockets: tuple[Client, ...] = ()
        try:
            cookie, token = await signed_in(browser, "bob")
            sockets = await sockets_of(setup, cookie, token)
            started = time.monotonic()
            await setup.idp.end_session(UserLogin(tokens={}, cookies=browser.http.cookies))
            await all_closed(*sockets, timeout_s=15)
            logging.getLogger(__name__).info("session check: %.3f s", time.monotonic() - started)
        finally:
            await browser.close()
            await close(*sockets)


async def test_sockets_close_when_their_session_reaches_its_maximum_age() -> None:
    async with login_setup(access_token_sid=False, login={"session_max_age_s": 3}) as setup:
        browser = Browser(setup.url)
        sockets: tuple[Client, ...] = ()
        try:
            cookie, token = await signed_in(browser, "dave")
            sockets = await sockets_of(setup, cookie, token)
            await all_closed(*sockets, timeout_s=15)
        finally:
            await browser.close()
            await close(*sockets)


# -- front-channel logout --------------------------------------------------------------------


def from_provider(setup: LoginSetup) -> dict[str, str]:
    """What the browser sends when the provider's logout page frames our endpoint."""
    return {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "iframe",
            "Referer": f"{setup.idp.issuer}/"}  # fmt: skip


async def test_frontchannel_logout_ends_the_providers_session_and_its_sockets(
    browser: Browser, setup: LoginSetup
) -> None:
    cookie, token = await signed_in(browser, "alice")
    sockets = await sockets_of(setup, cookie, token)
    session = await session_of(setup, "alice")
    anonymous = Browser(setup.url)  # the iframe: cross-site, so without our Lax cookie
    try:
        params = {"iss": setup.idp.issuer, "sid": session.idp_session}
        answer = await anonymous.http.get(f"{setup.url}{FRONT}", params=params,
                                          headers=from_provider(setup))  # fmt: skip
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        csp = answer.headers["content-security-policy"]
        assert f"frame-ancestors {setup.idp.issuer}" in csp
        assert "default-src 'none'" in csp
        assert "<script" not in answer.text
        await all_closed(*sockets)
        assert (await browser.http.get(f"{setup.url}/auth/me")).status_code == 401
    finally:
        await anonymous.close()
        await close(*sockets)


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("another issuer", 400),
        ("another sid", 200),  # matches nothing: says so to nobody, changes nothing
        ("no iss", 400),
        ("no parameters (session required)", 400),
        ("a stranger's frame", 403),
    ],
)
async def test_frontchannel_attacks_change_nothing(
    browser: Browser, setup: LoginSetup, case: str, status: int
) -> None:
    cookie, token = await signed_in(browser, "bob")
    sockets = await sockets_of(setup, cookie, token)
    sid = (await session_of(setup, "bob")).idp_session
    params, headers = {"iss": setup.idp.issuer, "sid": sid}, from_provider(setup)
    if case == "another issuer":
        params["iss"] = "https://evil.example/"
    elif case == "another sid":
        params["sid"] = "not-" + str(sid)
    elif case == "no iss":
        del params["iss"]
    elif case == "no parameters (session required)":
        params = {}
        headers = {"Sec-Fetch-Site": "same-origin"}  # with the cookie, even
    else:
        headers = {**headers, "Referer": "https://evil.example/page"}
    try:
        answer = await browser.http.get(f"{setup.url}{FRONT}", params=params, headers=headers)
        assert answer.status_code == status
        assert not answer.is_redirect
        assert "frame-ancestors" in answer.headers["content-security-policy"]
        await asyncio.sleep(0.3)
        assert not any(s.disconnected.is_set() for s in sockets)
        assert (await browser.http.get(f"{setup.url}/auth/me")).status_code == 200
    finally:
        await browser.http.post(f"{setup.url}/auth/logout", headers={"Origin": setup.url})
        await close(*sockets)


async def test_frontchannel_without_session_required_ends_the_browsers_own_session() -> None:
    async with login_setup(
        access_token_sid=False, login={"frontchannel_logout_session_required": False}
    ) as setup:
        browser = Browser(setup.url)
        sockets: tuple[Client, ...] = ()
        try:
            cookie, token = await signed_in(browser, "erin")
            sockets = await sockets_of(setup, cookie, token)
            # a top-level link from a stranger's page carries the Lax cookie: refused
            lured = await browser.http.get(f"{setup.url}{FRONT}", headers={
                "Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/"})  # fmt: skip
            assert lured.status_code == 403
            assert (await browser.http.get(f"{setup.url}/auth/me")).status_code == 200
            # a provider on the same site frames it with the cookie: the session ends
            answer = await browser.http.get(f"{setup.url}{FRONT}",
                                            headers={"Sec-Fetch-Site": "same-site"})  # fmt: skip
            assert answer.status_code == 200
            assert "max-age=0" in answer.headers["set-cookie"].lower()
            await all_closed(*sockets)
        finally:
            await browser.close()
            await close(*sockets)


async def test_a_frontchannel_flood_is_rate_limited_with_memory_bounded(
    setup: LoginSetup,
) -> None:
    flood = Browser(setup.url)
    rss_before = _rss_kib()
    try:
        statuses = []
        for index in range(500):
            params = {"iss": setup.idp.issuer, "sid": f"guess-{index}"}
            answer = await flood.http.get(f"{setup.url}{FRONT}", params=params)
            statuses.append(answer.status_code)
        assert set(statuses) <= {200, 429}
        assert statuses.count(200) <= 300 + 50  # the burst, plus what refills meanwhile
        assert statuses[-1] == 429
        assert _rss_kib() - rss_before < 20 * 1024
    finally:
        await flood.close()


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_backchannel_url_misused_as_front_channel_answers_405_naming_the_right_one(
    setup: LoginSetup, caplog: pytest.LogCaptureFixture
) -> None:
    client = Browser(setup.url)
    try:
        with caplog.at_level(logging.INFO, logger="ssoio.audit"):
            params = {"iss": setup.idp.issuer, "sid": "x"}
            answer = await client.http.get(f"{setup.url}/auth/backchannel-logout", params=params)
        assert answer.status_code == 405
        assert answer.headers["allow"] == "POST"
        assert answer.json()["frontchannel_logout_uri"] == f"{setup.url}{FRONT}"
        assert any("method_not_allowed" in r.getMessage() for r in caplog.records)
    finally:
        await client.close()


# -- RP-initiated logout and the landing page ----------------------------------------------------


async def test_rp_initiated_logout_and_the_landing_page(
    browser: Browser, setup: LoginSetup
) -> None:
    anonymous = await browser.http.get(f"{setup.url}/")
    assert anonymous.status_code == 200
    assert "/auth/login?next=/" in anonymous.text
    csp = anonymous.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    await browser.sign_in("alice")
    page = await browser.http.get(f"{setup.url}/")
    assert "alice" in page.text
    assert "action='/auth/logout'" in page.text
    assert f"form-action 'self' {setup.idp.issuer}" in page.headers["content-security-policy"]
    out = await browser.http.post(f"{setup.url}/auth/logout", headers={"Origin": setup.url})
    query = parse_qs(urlsplit(out.headers["location"]).query)
    # RP-Initiated Logout 1.0 §2
    assert query["client_id"] == ["ssoio-web"]
    assert query["post_logout_redirect_uri"] == [f"{setup.url}/"]
    assert jwt_payload(query["id_token_hint"][0])["sub"] == "alice"
    [state] = query["state"]
    forged = await browser.http.get(f"{setup.url}/", params={"state": "forged"})
    assert "not meant for this browser" in forged.text
    back = await browser.http.get(f"{setup.url}/", params={"state": state})
    assert "You are signed out." in back.text
    assert "You are not signed in." in back.text


async def test_landing_url_redirects() -> None:
    async with login_setup(landing=True, login={"landing_url": "https://intranet.example/"}) as s:
        client = Browser(s.url)
        try:
            answer = await client.http.get(f"{s.url}/")
            assert (answer.status_code, answer.headers["location"]) == (
                303,
                "https://intranet.example/",
            )
        finally:
            await client.close()
