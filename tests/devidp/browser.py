"""The authorization code flow with PKCE, by HTTP, as a browser and ssoio would drive it."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.devidp.harness import Running, http_client

__all__ = [
    "SCOPE",
    "WEB_CLIENT",
    "Login",
    "authorize_params",
    "code_exchange",
    "form_action",
    "form_fields",
    "login",
    "pkce_pair",
    "sign_in",
    "token_request",
]

WEB_CLIENT = "ssoio-demo"
SCOPE = "openid profile email chat"
_FORM_ACTION = re.compile(r'<form method="post" action="([^"]*)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


def pkce_pair() -> tuple[str, str]:
    """RFC 7636 §4.1-4.2: a verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def form_action(page: httpx.Response) -> str:
    match = _FORM_ACTION.search(page.text)
    assert match, page.text[:500]
    return urljoin(str(page.url), html.unescape(match.group(1)))


def form_fields(page: httpx.Response, **chosen: str) -> dict[str, str]:
    """The form's hidden fields, plus what the user chose."""
    hidden = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(page.text)}
    return hidden | chosen


@dataclass
class Login:
    """One sign-in: the request's secrets, where the provider sent the browser, the tokens."""

    verifier: str
    nonce: str
    state: str
    redirect_uri: str
    location: str = ""
    tokens: dict[str, Any] = field(default_factory=dict)
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.location).query).items()}


def authorize_params(running: Running, challenge: str | None, **extra: str) -> dict[str, str]:
    params = {
        "client_id": WEB_CLIENT,
        "response_type": "code",
        "scope": SCOPE,
        "redirect_uri": f"{running.url}/auth/callback",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return {k: v for k, v in params.items() if v}


async def sign_in(running: Running, username: str, **extra: str) -> Login:
    """GET /authorize, the login page, POST "sign in as": up to the redirect with the code."""
    verifier, challenge = pkce_pair()
    params = authorize_params(running, challenge, **extra)
    login = Login(verifier, params.get("nonce", ""), params["state"], params["redirect_uri"])
    async with http_client() as http:
        page = await http.get(f"{running.issuer}/authorize", params=params)
        assert page.status_code == 200, page.text
        assert "DEVELOPMENT ONLY" in page.text
        answer = await http.post(form_action(page), data=form_fields(page, username=username))
        assert answer.status_code == 302, answer.text
        login.location = answer.headers["location"]
        login.cookies = httpx.Cookies(http.cookies)
    return login


async def token_request(
    running: Running, data: dict[str, str], auth: httpx.Auth | None = None
) -> httpx.Response:
    async with http_client(auth=auth) as http:
        return await http.post(f"{running.issuer}/token", data=data)


def code_exchange(login: Login, **overrides: str) -> dict[str, str]:
    data = {
        "grant_type": "authorization_code",
        "code": login.query["code"],
        "redirect_uri": login.redirect_uri,
        "code_verifier": login.verifier,
        "client_id": WEB_CLIENT,  # a public client: PKCE instead of a secret
        **overrides,
    }
    return {k: v for k, v in data.items() if v}


async def login(running: Running, username: str, **extra: str) -> Login:
    """The whole flow; the code is exchanged with its verifier."""
    done = await sign_in(running, username, **extra)
    response = await token_request(running, code_exchange(done))
    assert response.status_code == 200, response.text
    done.tokens = response.json()
    return done
