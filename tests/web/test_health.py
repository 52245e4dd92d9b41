"""Liveness and readiness probes."""

from __future__ import annotations

from pathlib import Path

import httpx

from ssoio.app import SsoServer
from ssoio.settings import load_settings
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "ssoio.example.toml"
ISSUER = "https://idp.test/realms/acme"


async def test_readyz_follows_the_issuers_keys(rsa_key: SigningKey, clock: FakeClock) -> None:
    idp = FakeIdp(issuer=ISSUER, keys=[rsa_key], down=True)
    server = SsoServer(load_settings(EXAMPLE, env={"SSOIO_ISSUER": ISSUER}), clock=clock,
                       http=idp.client())  # fmt: skip
    transport = httpx.ASGITransport(app=server.asgi_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        down = await http.get("/readyz")
        assert (down.status_code, down.json()) == (
            503, {"status": "unavailable", "failing_issuers": ["primary"]},
        )  # fmt: skip
        idp.down = False
        await server.providers.warm()
        up = await http.get("/readyz")
        assert (up.status_code, up.json()["status"]) == (200, "ready")
        clock.advance(21600 + 1)  # past the stale limit with no refresh
        idp.down = True
        assert (await http.get("/readyz")).status_code == 503
    await server.providers.http.aclose()


async def test_the_browser_client_files_are_served(rsa_key: SigningKey, clock: FakeClock) -> None:
    idp = FakeIdp(issuer=ISSUER, keys=[rsa_key])
    server = SsoServer(load_settings(EXAMPLE, env={"SSOIO_ISSUER": ISSUER}), clock=clock,
                       http=idp.client())  # fmt: skip
    transport = httpx.ASGITransport(app=server.asgi_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        helper = await http.get("/ssoio/client.js")
        library = await http.get("/ssoio/socket.io.min.js")
    await server.providers.http.aclose()
    assert helper.status_code == library.status_code == 200
    assert "SsoioClient" in helper.text
    assert library.text.startswith("/*!\n * Socket.IO v4.8")
    assert helper.headers["content-type"].startswith("text/javascript")
