"""Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0): every check of
§2.6 with a forged token refused, and nothing changed by a refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ssoio.app import SsoServer
from ssoio.settings import load_settings
from ssoio.web.sessions import WebSession
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey, forge

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "ssoio.example.toml"
ISSUER = "https://idp.test/realms/acme"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
async def server(rsa_key: SigningKey, clock: FakeClock) -> AsyncIterator[SsoServer]:
    env = {"SSOIO_ISSUER": ISSUER, "SSOIO_CLIENT_ID": "ssoio-web"}
    idp = FakeIdp(issuer=ISSUER, keys=[rsa_key])
    server = SsoServer(load_settings(EXAMPLE, env=env), clock=clock, http=idp.client())
    assert server.login is not None
    await server.login.store.save(
        WebSession(
            "web-1",
            clock(),
            clock() + 3600,
            issuer="primary",
            subject="alice",
            idp_session="sid-1",
            access_token="at",
            refresh_token="rt",
        )
    )
    yield server
    await server.providers.http.aclose()


@pytest.fixture
def logout_token(rsa_key: SigningKey, clock: FakeClock) -> Callable[..., str]:
    def make(
        key: SigningKey | None = None, header: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        now = int(clock())
        body = {"iss": ISSUER, "aud": "ssoio-web", "iat": now, "exp": now + 120, "jti": "j-1",
                "sid": "sid-1", "sub": "alice", "events": {EVENT: {}}, **claims}  # fmt: skip
        body = {k: v for k, v in body.items() if v is not ...}
        signer = key or rsa_key
        head = {"alg": "RS256", "typ": "logout+jwt", "kid": signer.kid, **(header or {})}
        return forge({k: v for k, v in head.items() if v is not ...}, body, signer)

    return make


async def post(server: SsoServer, form: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=server.asgi_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        return await http.post("/auth/backchannel-logout", data=form)


async def session_alive(server: SsoServer) -> bool:
    assert server.login is not None
    return await server.login.store.load("web-1") is not None


async def test_valid_token_ends_the_session_once(
    server: SsoServer, logout_token: Callable[..., str]
) -> None:
    token = logout_token()
    first = await post(server, {"logout_token": token})
    assert (first.status_code, first.headers["cache-control"]) == (200, "no-store")
    assert not await session_alive(server)
    replay = await post(server, {"logout_token": token})  # §2.6 step 7: jti used once
    assert replay.status_code == 400


async def test_sub_only_ends_all_of_the_users_sessions(
    server: SsoServer, logout_token: Callable[..., str]
) -> None:
    response = await post(server, {"logout_token": logout_token(sid=..., jti="j-sub")})
    assert response.status_code == 200
    assert not await session_alive(server)


FORGERIES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # (source, header changes, claim changes)
    ("BCL §2.6 step 2 / JWT: alg none", {"alg": "none"}, {}),
    ("BCL §2.6 step 3: wrong iss", {}, {"iss": "https://evil.example"}),
    ("BCL §2.6 step 3: iss missing", {}, {"iss": ...}),
    ("BCL §2.6 step 3: another client's aud", {}, {"aud": "other-client"}),
    ("BCL §2.6 step 3: iat missing", {}, {"iat": ...}),
    ("BCL §2.6 step 3: iat in the future", {}, {"iat": 1_800_000_000 + 3600}),
    ("BCL §2.6 step 3: too old (iat)", {}, {"iat": 1_800_000_000 - 3600, "exp": ...}),
    ("BCL §2.6 step 3: expired", {}, {"exp": 1_800_000_000 - 600}),
    ("BCL §2.6 step 4: neither sub nor sid", {}, {"sub": ..., "sid": ...}),
    ("BCL §2.6 step 4: sid not a string", {}, {"sid": 7}),
    ("BCL §2.6 step 5: events missing", {}, {"events": ...}),
    ("BCL §2.6 step 5: wrong event", {}, {"events": {"http://example.com/other": {}}}),
    ("BCL §2.6 step 5: event not an object", {}, {"events": {EVENT: "yes"}}),
    ("BCL §2.6 step 6: a nonce (an ID token)", {}, {"nonce": "n-1"}),
    ("BCL §2.4: jti missing", {}, {"jti": ...}),
    ("RFC 8725 §3.11: an access token (typ at+jwt)", {"typ": "at+jwt"}, {}),
]


@pytest.mark.parametrize(("source", "header", "claims"), FORGERIES, ids=[f[0] for f in FORGERIES])
async def test_forged_tokens_are_refused_and_change_nothing(
    server: SsoServer, logout_token: Callable[..., str], source: str,
    header: dict[str, Any], claims: dict[str, Any],
) -> None:  # fmt: skip
    token = logout_token(header=header, **claims)
    if header.get("alg") == "none":
        token = token.rsplit(".", 1)[0] + "."
    response = await post(server, {"logout_token": token})
    assert response.status_code == 400, source
    assert response.json()["error"] == "invalid_request"
    assert await session_alive(server), source


@pytest.mark.parametrize(
    "form",
    [{}, {"logout_token": ""}, {"logout_token": "not.a.jwt"}, {"other": "x"}],
)
async def test_malformed_requests(server: SsoServer, form: dict[str, str]) -> None:
    response = await post(server, form)
    assert response.status_code == 400
    assert await session_alive(server)


async def test_signed_by_another_key(
    server: SsoServer, logout_token: Callable[..., str], rsa_key_2: SigningKey
) -> None:
    impostor = SigningKey("rsa-1", rsa_key_2.private)
    response = await post(server, {"logout_token": logout_token(key=impostor)})
    assert response.status_code == 400
    assert response.json()["error_description"] == "signature_invalid"
    assert await session_alive(server)
