"""``ssoio demo``: one process with the development IdP, ssoio and the demo page.

::

    /            the demo page          /dev-idp/   the development OpenID Provider
    /auth/...    browser sign-in        /socket.io/ the authenticated Socket.IO server
    /ssoio/client.js, /ssoio/socket.io.min.js   the browser helper and socket.io-client

The example configuration runs unchanged: its issuer defaults to ``<public
URL>/dev-idp`` and its login client to ``ssoio-demo`` (a public client with PKCE).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ssoio.app import SsoServer
from ssoio.config import Settings
from ssoio.devidp import MOUNT_PATH, DevIdp
from ssoio.settings import load_settings

__all__ = ["Demo", "build_demo", "demo_env"]

log = logging.getLogger("ssoio.demo")

STATIC = Path(__file__).parent / "static"


def demo_env(host: str, port: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the example configuration reads, pointed at this demo."""
    env = dict(os.environ if base is None else base)
    public_url = f"http://{host}:{port}"
    env.setdefault("SSOIO_PUBLIC_URL", public_url)
    env.setdefault("SSOIO_ISSUER", f"{public_url}{MOUNT_PATH}")
    env.setdefault("SSOIO_HOST", host)
    env.setdefault("SSOIO_PORT", str(port))
    return env


@dataclass
class Demo:
    app: Starlette
    sso: SsoServer
    idp: DevIdp
    public_url: str


def build_demo(settings: Settings, users: Path, *, at_ttl: int = 300) -> Demo:
    """The demo's single ASGI app.

    :raises ConfigError: not loopback, production mode, or a bad users file.
    """
    public_url = settings.server.public_url.rstrip("/")
    idp = DevIdp.from_files(users, public_url, mode=settings.mode, at_ttl=at_ttl)
    sso = SsoServer(settings)
    policy = _content_security_policy(public_url)

    async def page(_request: Request) -> Response:
        response = FileResponse(STATIC / "index.html", media_type="text/html")
        response.headers["content-security-policy"] = policy
        response.headers["cache-control"] = "no-store"
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with sso.lifespan(app):
            yield

    app = Starlette(
        routes=[
            Route("/", page),
            Mount("/demo/static", app=StaticFiles(directory=STATIC)),
            Mount(MOUNT_PATH, app=idp.asgi_app),
            Mount("/", app=sso.asgi_app),
        ],
        lifespan=lifespan,
    )
    return Demo(app, sso, idp, public_url)


def load_demo_settings(config: Path, host: str, port: int) -> Settings:
    return load_settings(config, env=demo_env(host, port))


def _content_security_policy(public_url: str) -> str:
    websocket = public_url.replace("http", "ws", 1)
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src 'self' {websocket}; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
