"""Browser sign-in by plain HTTP: an ssoio node and a node OpenID Provider set up for
each other (redirect and back-channel logout URIs), and a cookie-keeping "browser"."""

from __future__ import annotations

import html
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from ssoio.app import SsoServer

from .asgi_server import serve_asgi
from .provider import _FORM_ACTION, NodeProvider, ProviderError
from .ssoio_server import example_settings

MAX_HOPS = 12


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LoginSetup:
    url: str
    server: SsoServer
    idp: NodeProvider


@asynccontextmanager
async def login_setup(
    *, at_ttl: int = 300, clock: Any = None, wrap: Callable[[SsoServer], Any] | None = None,
    backchannel: bool = True, access_token_sid: bool = True, landing: bool = False,
    login: dict[str, Any] | None = None, limits: dict[str, Any] | None = None,
    recovery: dict[str, Any] | None = None,
) -> AsyncIterator[LoginSetup]:  # fmt: skip
    """A node provider and an ssoio node whose public URL it knows (for its redirects);
    ``wrap`` may build a host app around the node (pages on the same origin); ``login``,
    ``limits`` and ``recovery`` override those sections of the settings."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    idp = await NodeProvider.start(
        at_ttl=at_ttl, redirect_uris=[f"{url}/auth/callback"],
        post_logout_redirect_uris=[f"{url}/"],
        backchannel_logout_uri=f"{url}/auth/backchannel-logout" if backchannel else None,
        access_token_sid=access_token_sid,
    )  # fmt: skip
    try:
        settings = example_settings(
            idp,
            server={"public_url": url},
            login={"client_id": "ssoio-web", "client_secret": "ssoio-web-secret",
                   "session_secret": "test-session-secret-0123456789abcdef", **(login or {})},
            limits={"connects_per_ip": {"rate": 1000, "burst": 1000},
                    "failed_auth_per_ip": {"rate": 1000, "burst": 1000}, **(limits or {})},
            recovery=recovery or {},
        )  # fmt: skip
        server = SsoServer(settings, landing=landing, **({"clock": clock} if clock else {}))
        app = wrap(server) if wrap else server.asgi_app
        async with serve_asgi(app, port=port, lifespan="on", ws="websockets-sansio"):
            yield LoginSetup(url, server, idp)
    finally:
        await idp.stop()


class Browser:
    """One cookie jar, redirects followed by hand across ssoio and the provider."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=10)

    async def close(self) -> None:
        await self.http.aclose()

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get("ssoio_session")

    async def start_login(self, next_path: str = "/") -> httpx.Response:
        """GET /auth/login; returns ssoio's redirect to the provider."""
        return await self.http.get(f"{self.origin}/auth/login", params={"next": next_path})

    async def to_callback(self, user: str, start: httpx.Response) -> str:
        """Follow the provider's pages, sign in, and return the callback URL it sends us
        back to (not fetched)."""
        response = start
        for _ in range(MAX_HOPS):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(f"{self.origin}/auth/callback"):
                    return location
                response = await self.http.get(location)
                continue
            action = _FORM_ACTION.search(response.text)
            if response.status_code != 200 or action is None:
                raise ProviderError(f"unexpected page {response.status_code} at {response.url}")
            response = await self.http.post(
                urljoin(str(response.url), html.unescape(action.group(1))),
                data={"username": user, "password": f"{user}-pw"},
            )
        raise ProviderError("no redirect back to ssoio")

    async def sign_in(self, user: str, next_path: str = "/") -> httpx.Response:
        """The whole flow; returns ssoio's answer to the callback (a redirect to next)."""
        callback = await self.to_callback(user, await self.start_login(next_path))
        return await self.http.get(callback)

    def set_cookie_headers(self, response: httpx.Response) -> list[str]:
        return response.headers.get_list("set-cookie")
