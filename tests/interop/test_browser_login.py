"""Browser sign-in end to end by HTTP, against the node OpenID Provider (with its
back-channel logout feature on) and uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import pytest_asyncio

from .provider import UserLogin, jwt_payload
from .ssoio_server import Client
from .web_login import Browser, LoginSetup, login_setup

pytestmark = pytest.mark.interop


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def setup() -> AsyncIterator[LoginSetup]:
    async with login_setup() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def browser(setup: LoginSetup) -> AsyncIterator[Browser]:
    browser = Browser(setup.url)
    yield browser
    await browser.close()


def cookie_flags(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


def named(headers: list[str], name: str) -> str:
    [header] = [h for h in headers if h.startswith(f"{name}=")]
    return header


async def test_sign_in_sets_a_fresh_locked_down_session_cookie(browser: Browser) -> None:
    start = await browser.start_login("/rooms?x=1")
    assert start.status_code == 302
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert {"state", "nonce", "code_challenge"} <= set(query)
    assert query["redirect_uri"] == [f"{browser.origin}/auth/callback"]
    # the login transaction lives in its own short cookie, not in a session
    [pending] = browser.set_cookie_headers(start)
    assert pending.startswith("ssoio_login=")
    assert "max-age=600" in pending.lower()
    before = browser.session_cookie
    assert before is None
    callback = await browser.to_callback("alice", start)
    done = await browser.http.get(callback)
    assert (done.status_code, done.headers["location"]) == (303, "/rooms?x=1")
    assert "max-age=0" in named(browser.set_cookie_headers(done), "ssoio_login").lower()
    header = named(browser.set_cookie_headers(done), "ssoio_session")
    assert cookie_flags(header) >= {"httponly", "samesite", "path", "max-age"}
    assert "samesite=lax" in header.lower()
    assert "secure" not in cookie_flags(header)  # http://127.0.0.1: Secure would drop it
    assert browser.session_cookie not in (None, before)  # a new id at login: no fixation
    assert done.headers["cache-control"] == "no-store"


async def test_me_and_token_hand_off(browser: Browser, setup: LoginSetup) -> None:
    await browser.sign_in("bob")
    me = await browser.http.get(f"{setup.url}/auth/me")
    assert me.json()["sub"] == "bob"
    assert me.json()["roles"] == ["staff"]
    assert me.json()["attributes"] == {"tenant": ["acme"]}
    assert me.json()["auto_join"] == ["user:bob", "tenant:acme"]
    token = await browser.http.get(f"{setup.url}/auth/token")
    assert token.headers["cache-control"] == "no-store"
    body = token.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 300
    assert jwt_payload(body["access_token"])["sub"] == "bob"
    cross_site = await browser.http.get(f"{setup.url}/auth/token",
                                        headers={"Sec-Fetch-Site": "cross-site"})  # fmt: skip
    assert (cross_site.status_code, cross_site.json()["error"]["code"]) == (403, "origin_denied")


async def test_signed_out_requests_are_refused(setup: LoginSetup) -> None:
    anonymous = Browser(setup.url)
    try:
        for path in ("/auth/token", "/auth/me"):
            answer = await anonymous.http.get(f"{setup.url}{path}")
            assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_missing")
        anonymous.http.cookies.set("ssoio_session", "forged.value", domain="127.0.0.1")
        forged = await anonymous.http.get(f"{setup.url}/auth/token")
        assert forged.status_code == 401
    finally:
        await anonymous.close()


async def test_sockets_with_the_cookie_and_with_the_handed_off_token(
    browser: Browser, setup: LoginSetup
) -> None:
    await browser.sign_in("erin")
    cookie = browser.session_cookie
    token = (await browser.http.get(f"{setup.url}/auth/token")).json()["access_token"]
    by_cookie, by_token = Client(setup.url), Client(setup.url)
    try:
        assert await by_cookie.connect(None, headers={"Cookie": f"ssoio_session={cookie}"})
        assert await by_token.connect(token)
        for client in (by_cookie, by_token):
            answer = await client.call("room:join", {"room": "tenant:acme:general"})
            assert answer == {"ok": True, "room": "tenant:acme:general"}
        bad = Client(setup.url)
        assert not await bad.connect(None, headers={"Cookie": "ssoio_session=nope"})
        assert bad.connect_error["data"]["code"] == "token_missing"
        await bad.close()
    finally:
        await by_cookie.close()
        await by_token.close()


async def test_logout_at_ssoio(browser: Browser, setup: LoginSetup) -> None:
    await browser.sign_in("dave")
    cookie = browser.session_cookie
    socket = Client(setup.url)
    try:
        assert await socket.connect(None, headers={"Cookie": f"ssoio_session={cookie}"})
        csrf = await browser.http.post(f"{setup.url}/auth/logout",
                                       headers={"Origin": "https://evil.example"})  # fmt: skip
        assert (csrf.status_code, csrf.json()["error"]["code"]) == (403, "origin_denied")
        no_origin = await browser.http.post(f"{setup.url}/auth/logout")
        assert no_origin.status_code == 403
        out = await browser.http.post(f"{setup.url}/auth/logout", headers={"Origin": setup.url})
        assert out.status_code == 303
        target = urlsplit(out.headers["location"])
        params = parse_qs(target.query)
        assert out.headers["location"].startswith(setup.idp.issuer)
        assert params["post_logout_redirect_uri"] == [f"{setup.url}/"]
        assert jwt_payload(params["id_token_hint"][0])["sub"] == "dave"
        assert await socket.wait_for("auth:revoked") == [{"code": "logged_out"}]
        assert (await browser.http.get(f"{setup.url}/auth/token")).status_code == 401
    finally:
        await socket.close()


async def test_backchannel_logout_at_the_provider_disconnects_sockets(
    browser: Browser, setup: LoginSetup
) -> None:
    await browser.sign_in("carol")
    token = (await browser.http.get(f"{setup.url}/auth/token")).json()["access_token"]
    assert jwt_payload(token).get("sid")
    socket = Client(setup.url)
    try:
        assert await socket.connect(token)
        # The provider's logout page, in the same browser (its cookies): it POSTs a
        # logout_token to ssoio's back-channel endpoint before answering.
        await setup.idp.end_session(UserLogin(tokens={}, cookies=browser.http.cookies))
        assert await socket.wait_for("auth:revoked") == [{"code": "logged_out"}]
        await asyncio.wait_for(socket.disconnected.wait(), 5)
        assert (await browser.http.get(f"{setup.url}/auth/token")).status_code == 401
    finally:
        await socket.close()


# -- attacks on the callback ---------------------------------------------------------------


async def test_wrong_and_missing_state(browser: Browser, setup: LoginSetup) -> None:
    callback = await browser.to_callback("alice", await browser.start_login())
    parts = urlsplit(callback)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for query in ({**params, "state": "forged"}, {k: v for k, v in params.items() if k != "state"}):
        page = await browser.http.get(f"{setup.url}/auth/callback?{urlencode(query)}")
        assert page.status_code == 400
        assert "state_invalid" in page.text
        assert "Traceback" not in page.text
    # forgeries change nothing: the genuine callback still completes, once
    assert (await browser.http.get(callback)).status_code == 303
    assert (await browser.http.get(callback)).status_code == 400


async def test_replayed_callback_and_replayed_code(browser: Browser, setup: LoginSetup) -> None:
    callback = await browser.to_callback("bob", await browser.start_login())
    assert (await browser.http.get(callback)).status_code == 303
    replay = await browser.http.get(callback)  # the same URL again
    assert (replay.status_code, "state_invalid" in replay.text) == (400, True)
    # the same code under a fresh, valid state: the provider refuses it
    fresh = await browser.start_login()
    state = parse_qs(urlsplit(fresh.headers["location"]).query)["state"][0]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    page = await browser.http.get(f"{setup.url}/auth/callback",
                                  params={"code": code, "state": state})  # fmt: skip
    assert (page.status_code, "code_rejected" in page.text) == (400, True)


async def test_nonce_mismatch_is_refused(browser: Browser, setup: LoginSetup) -> None:
    start = await browser.start_login()
    callback = await browser.to_callback("erin", start)
    login = setup.server.login
    assert login is not None
    pending = login.pending.open(browser.http.cookies.get(login.pending.name))
    assert pending is not None
    # as if the ID token were for another login
    other = dataclasses.replace(pending, nonce="not-the-nonce-that-was-sent")
    browser.http.cookies.set(login.pending.name, login.pending.seal(other), domain="127.0.0.1")
    page = await browser.http.get(callback)
    assert (page.status_code, "claims_invalid" in page.text) == (400, True)


async def test_provider_error_is_a_clear_page(browser: Browser, setup: LoginSetup) -> None:
    params = {"error": "access_denied<script>", "state": "x"}
    page = await browser.http.get(f"{setup.url}/auth/callback", params=params)
    assert page.status_code == 400
    assert "access_denied" in page.text
    assert "<script>" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    "next_path",
    ["https://evil.example/", "//evil.example", "/\\evil.example", "\\\\evil.example",
     "javascript:alert(1)", "/\t/evil.example"],
)  # fmt: skip
async def test_open_redirects_end_at_root(browser: Browser, next_path: str) -> None:
    done = await browser.sign_in("alice", next_path)
    assert (done.status_code, done.headers["location"]) == (303, "/")


async def test_hand_off_refreshes_near_expiry_once_for_concurrent_callers() -> None:
    # 30 s tokens are always within login.refresh_margin_s (60 s): each hand-off refreshes
    async with login_setup(at_ttl=30) as short:
        browser = Browser(short.url)

        async def slow_provider(request: httpx.Request) -> None:
            # the token endpoint answers in ~0.3 s (a provider across a network), so that
            # the five callers surely overlap the one refresh (on loopback it takes ~5 ms,
            # and a caller arriving after it would rightly refresh a 30 s token again)
            if request.method == "POST":
                await asyncio.sleep(0.3)

        short.server.providers.http.event_hooks["request"].append(slow_provider)
        try:
            await browser.sign_in("erin")
            answers = await asyncio.gather(
                *(browser.http.get(f"{short.url}/auth/token") for _ in range(5))
            )
            tokens = {answer.json()["access_token"] for answer in answers}
            assert len(tokens) == 1  # one refresh served every concurrent caller
            await asyncio.sleep(1.1)  # the next token must differ in iat
            again = (await browser.http.get(f"{short.url}/auth/token")).json()["access_token"]
            assert again not in tokens
            assert jwt_payload(again)["sub"] == "erin"
        finally:
            await browser.close()
