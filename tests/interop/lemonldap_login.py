"""An ssoio node signed into through LemonLDAP::NG (tests/interop/lemonldap.py).

`lemonldap_settings()` is the ssoio configuration a LemonLDAP::NG 2.16 deployment needs
(config/ssoio.example.toml with its `[[issuers]]` and `[login]` pointed at the portal);
`lemonldap_login_setup()` runs the portal and an ssoio node (uvicorn on 127.0.0.1, as
web_login.login_setup does) set up for each other, with a `FrontChannelRecorder` beside ssoio
that stands in for a front-channel logout endpoint until ssoio has one.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from ssoio.app import SsoServer
from ssoio.config import Settings
from ssoio.settings import load_settings, validate_raw
from ssoio.web.sessions import WebSession

from .asgi_server import serve_asgi
from .lemonldap import LemonLdapProvider, running_lemonldap
from .ssoio_server import EXAMPLE, _plain

ISSUER_NAME: Final = "lemonldap"
RECORDER_PATH: Final = "/test/frontchannel-logout"
SESSION_SECRET: Final = "test-session-secret-0123456789abcdef"


def lemonldap_settings(
    provider: LemonLdapProvider, public_url: str, **overrides: dict[str, Any]
) -> Settings:
    """The example configuration for an ssoio node at ``public_url`` that trusts the portal.

    What LemonLDAP::NG 2.16 needs: the issuer with its trailing slash; `token_types` with
    "JWT" (its access tokens' `typ`); the client id as audience (the first member of its
    access tokens' `aud` array); the "generic" claim preset (sub, preferred_username, email,
    name, client_id, roles, groups, scope: the claims it copies into access tokens); and
    the "groups" scope, which releases groups and roles. ``overrides`` merge into sections
    (``login={...}``) as in ssoio_server.example_settings.
    """
    settings = load_settings(EXAMPLE, env={"SSOIO_ISSUER": provider.issuer})
    raw = settings.model_dump(mode="python")
    raw["server"] = {**raw["server"], "public_url": public_url}
    raw["issuers"] = [
        {
            **raw["issuers"][0],
            "name": ISSUER_NAME,
            "issuer": provider.issuer,
            "audiences": [provider.access_token_audience],
            "token_types": ["at+jwt", "JWT"],
            "claims": {"preset": "generic", "attributes": {"tenant": "tenant"}},
            "introspection": None,
        }
    ]
    raw["login"] = {
        **raw["login"],
        "issuer": ISSUER_NAME,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        # "chat": the example policy's chat:send requires it (LemonLDAP::NG grants unknown
        # scopes as asked: oidcServiceAllowOnlyDeclaredScopes is off).
        "scopes": [*provider.scopes, "chat"],
        "session_secret": SESSION_SECRET,
    }
    raw["limits"] = {
        **raw["limits"],
        "connects_per_ip": {"rate": 1000, "burst": 1000},
        "failed_auth_per_ip": {"rate": 1000, "burst": 1000},
    }
    for section, values in overrides.items():
        raw[section] = {**raw.get(section, {}), **values}
    return validate_raw(_plain(raw), {})


@dataclass
class FrontChannelRecorder:
    """Records the GETs a provider's logout page makes to a front-channel logout URL."""

    requests: list[dict[str, Any]] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(
            {
                "query": dict(request.query_params),
                "cookies": sorted(request.cookies),
                "referer": request.headers.get("referer"),
                "sec_fetch_dest": request.headers.get("sec-fetch-dest"),
                "sec_fetch_site": request.headers.get("sec-fetch-site"),
            }
        )
        # OIDC Front-Channel Logout 1.0 §4: the RP's answer should not be cached.
        return HTMLResponse("<!doctype html><title>logged out</title>", headers={
            "cache-control": "no-cache, no-store"
        })  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LemonLdapSetup:
    url: str
    server: SsoServer
    provider: LemonLdapProvider
    recorder: FrontChannelRecorder

    async def sessions(self, subject: str) -> list[WebSession]:
        """The ssoio sessions of a user (tokens included: tests inspect what ssoio got)."""
        assert self.server.login is not None
        store = self.server.login.store
        found = [await store.load(sid) for sid in await store.find(ISSUER_NAME, subject=subject)]
        return [session for session in found if session is not None]


@asynccontextmanager
async def lemonldap_login_setup(
    *,
    access_token_ttl: int = 600,
    additional_audiences: tuple[str, ...] = (),
    frontchannel_path: str = RECORDER_PATH,
    wrap: Callable[[SsoServer, ASGIApp], ASGIApp] | None = None,
    **overrides: dict[str, Any],
) -> AsyncIterator[LemonLdapSetup]:
    """LemonLDAP::NG and an ssoio node (on 127.0.0.1) registered with each other.

    The portal's front-channel logout URL is ``ssoio URL + frontchannel_path``: by default
    the recorder, served beside ssoio on the same origin; point it at ssoio's own endpoint
    once there is one. ``wrap(server, app)`` may build a host app around the two.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with running_lemonldap(
        redirect_uris=[f"{url}/auth/callback"],
        post_logout_redirect_uris=[f"{url}/"],
        frontchannel_logout_uri=f"{url}{frontchannel_path}",
        access_token_ttl=access_token_ttl,
        additional_audiences=additional_audiences,
    ) as provider:
        server = SsoServer(lemonldap_settings(provider, url, **overrides))
        recorder = FrontChannelRecorder()
        app: ASGIApp = Starlette(
            routes=[Route(RECORDER_PATH, recorder.endpoint), Mount("/", app=server.asgi_app)],
            lifespan=server.lifespan,
        )
        if wrap is not None:
            app = wrap(server, app)
        async with serve_asgi(app, port=port, lifespan="on", ws="websockets-sansio"):
            yield LemonLdapSetup(url, server, provider, recorder)
