"""The pre-login cookie and the session cookie, on a live node: the login transaction lives
in its own short cookie (``login.login_timeout_s``, not the 8 h of a session), both cookies
are ``__Host-`` prefixed when the public URL is https (RFC 6265bis §4.1.3.2: Secure,
Path=/, no Domain) and keep their plain names on http (the demo), and the callback sends
the PKCE verifier that belongs to the challenge it sent (RFC 7636 §4.6)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ssoio.web.sessions import WebSession
from tests.security.harness import ISSUER, Node, running_node, settings_from
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey

HTTPS_URL = "https://sso.example"


def attributes(header: str) -> dict[str, str]:
    """``Set-Cookie`` attributes, lower-cased names (the cookie itself under "")."""
    name_value, *rest = (part.strip() for part in header.split(";"))
    found = {"": name_value}
    for part in rest:
        key, _, value = part.partition("=")
        found[key.lower()] = value
    return found


class TokenEndpoint:
    """The FakeIdp plus a token endpoint that records each form and refuses the code."""

    def __init__(self, idp: FakeIdp) -> None:
        self.idp = idp
        self.forms: list[dict[str, str]] = []
        self.auth: list[str | None] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == f"{ISSUER}/token":
            self.forms.append(dict(httpx.QueryParams(request.content.decode())))
            self.auth.append(request.headers.get("authorization"))
            return httpx.Response(400, json={"error": "invalid_grant"})
        return self.idp.handle(request)


NodeFactory = Callable[..., Any]


@pytest.fixture
async def start(rsa_key: SigningKey) -> AsyncIterator[NodeFactory]:
    """``await start(server=..., login=...)``: a node with the example config, those sections
    merged over it; (node, the provider's token endpoint)."""
    contexts: list[Any] = []

    async def make(
        server: dict[str, Any] | None = None, login: dict[str, Any] | None = None
    ) -> tuple[Node, TokenEndpoint]:
        idp = FakeIdp(issuer=ISSUER, keys=[rsa_key])
        endpoint = TokenEndpoint(idp)
        http = httpx.AsyncClient(transport=httpx.MockTransport(endpoint.handle))
        settings = settings_from(server=server or {}, login=login or {})
        context = running_node(settings, key=rsa_key, idp=idp, http=http)
        contexts.append(context)
        return await context.__aenter__(), endpoint

    yield make
    for context in reversed(contexts):
        await context.__aexit__(None, None, None)


async def login(node: Node) -> httpx.Response:
    async with httpx.AsyncClient(base_url=node.url) as http:
        return await http.get("/auth/login", params={"next": "/rooms"})


async def test_pre_login_cookie_is_short_lived_on_http(start: NodeFactory) -> None:
    node, _ = await start()
    answer = await login(node)
    assert answer.status_code == 302
    [header] = answer.headers.get_list("set-cookie")
    cookie = attributes(header)
    assert cookie[""].startswith("ssoio_login=")  # http (the demo): no prefix, no Secure
    assert cookie["max-age"] == "600"  # login.login_timeout_s, not the session's 8 h
    assert {"path": "/", "httponly": "", "samesite": "Lax"}.items() <= cookie.items()
    assert "secure" not in cookie
    assert "domain" not in cookie
    await node.assert_healthy(fetches=1)


async def test_cookies_are_host_prefixed_under_https(start: NodeFactory) -> None:
    node, _ = await start(server={"public_url": HTTPS_URL})
    [header] = (await login(node)).headers.get_list("set-cookie")
    cookie = attributes(header)
    assert cookie[""].startswith("__Host-ssoio_login=")
    assert {"path": "/", "secure": "", "httponly": "", "max-age": "600"}.items() <= cookie.items()
    assert "domain" not in cookie
    # the session cookie: only the prefixed name is read
    login_ = node.server.login
    assert login_ is not None
    assert login_.cookies.name == "__Host-ssoio_session"
    token = node.token("alice")
    now = node.clock()
    session = WebSession(
        secrets.token_urlsafe(32), now, now + 3600, issuer="primary", subject="alice",
        access_token=token, access_expires_at=now + 300,
    )  # fmt: skip
    await login_.store.save(session)
    signed = login_.cookies.sign(session.id)
    async with httpx.AsyncClient(base_url=node.url) as http:
        good = await http.get("/auth/token", headers={"Cookie": f"__Host-ssoio_session={signed}"})
        planted = await http.get("/auth/token", headers={"Cookie": f"ssoio_session={signed}"})
        assert (good.status_code, planted.status_code) == (200, 401)
        answer = await node.connect(None, headers={"Cookie": f"__Host-ssoio_session={signed}"})
        socket = node.sockets[-1]
        out = await http.post("/auth/logout", headers={
            "Cookie": f"__Host-ssoio_session={signed}", "Origin": HTTPS_URL,
            "Accept": "application/json"})  # fmt: skip
    assert answer.type == 0, answer.raw  # a socket connects with the prefixed cookie
    cleared = attributes(out.headers["set-cookie"])
    assert cleared[""] == "__Host-ssoio_session="
    assert {"path": "/", "secure": "", "max-age": "0"}.items() <= cleared.items()
    assert await socket.wait_event("auth:revoked") == {"code": "logged_out"}
    node.recorder.statuses.clear()  # the 401 was the point
    node.secrets.discard(token)  # handed to its own session on purpose
    node.secrets.discard(token.rsplit(".", 1)[1])
    await node.assert_healthy(fetches=1)


async def test_pre_login_cookie_expires_after_login_timeout(start: NodeFactory) -> None:
    node, endpoint = await start(login={"login_timeout_s": 120})
    async with httpx.AsyncClient(base_url=node.url) as http:
        started = await http.get("/auth/login")
        assert attributes(started.headers["set-cookie"])["max-age"] == "120"
        query = parse_qs(urlsplit(started.headers["location"]).query)
        callback = {"state": query["state"][0], "code": "the-code"}
        for forged in ("é" + query["state"][0][1:], "x"):  # (non-ASCII: no 500)
            wrong = await http.get("/auth/callback", params={**callback, "state": forged})
            assert (wrong.status_code, "state_invalid" in wrong.text) == (400, True)
        node.clock.advance(121)  # the browser would have dropped it; a replay is refused
        late = await http.get("/auth/callback", params=callback)
        assert (late.status_code, "state_invalid" in late.text) == (400, True)
        assert endpoint.forms == []  # refused before any request to the provider
        # in time: the code goes to the token endpoint with the matching PKCE verifier
        started = await http.get("/auth/login")
        query = parse_qs(urlsplit(started.headers["location"]).query)
        node.clock.advance(119)
        callback = {"state": query["state"][0], "code": "the-code"}
        refused = await http.get("/auth/callback", params=callback)
    assert (refused.status_code, "code_rejected" in refused.text) == (400, True)
    assert "max-age=0" in refused.headers["set-cookie"].lower()  # used: cleared
    [form] = endpoint.forms
    verifier = form["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge.rstrip(b"=").decode() == query["code_challenge"][0]
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == query["redirect_uri"][0]
    assert form["client_id"] == "ssoio-web"  # no secret configured: a public client
    assert endpoint.auth == [None]
    node.recorder.statuses.clear()  # the 400s were the point
    await node.assert_healthy(fetches=2, also_secret=[verifier])
