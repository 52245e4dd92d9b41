"""Shared fixtures: keys generated once per session, a fake clock, factories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ssoio.config import Settings
from ssoio.oidc.providers import IdentityProviders
from ssoio.settings import validate_raw
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey, forge
from tests.support.transport_path import transport_path

ISSUER = "https://idp.test/realms/acme"
SSOIO_ONLY = "ssoio_transport"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the stock transport path (SSOIO_TRANSPORT=stock), the tests of protections only
    ssoio's transport classes have are deselected: the stock path lacks them by design
    (ssoio/transport/gates.py, each Piece's ``lacks``). Every such mark says why."""
    marked = [item for item in items if item.get_closest_marker(SSOIO_ONLY) is not None]
    for item in marked:
        marker = item.get_closest_marker(SSOIO_ONLY)
        assert marker is not None
        assert marker.kwargs.get("reason"), f"{item.nodeid}: {SSOIO_ONLY} needs reason=..."
    if transport_path() != "stock" or not marked:
        return
    config.hook.pytest_deselected(items=marked)
    items[:] = [item for item in items if item.get_closest_marker(SSOIO_ONLY) is None]


AUDIENCE = "ssoio-api"

SettingsFactory = Callable[..., Settings]
TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey.rsa("rsa-1")


@pytest.fixture(scope="session")
def rsa_key_2() -> SigningKey:
    return SigningKey.rsa("rsa-2")


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return SigningKey.ec("ec-1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def idp(rsa_key: SigningKey) -> FakeIdp:
    return FakeIdp(issuer=ISSUER, keys=[rsa_key])


def issuer_table(**overrides: Any) -> dict[str, Any]:
    """One ``[[issuers]]`` table as TOML would give it."""
    return {"name": "acme", "issuer": ISSUER, "audiences": [AUDIENCE], **overrides}


@pytest.fixture
def settings_factory() -> SettingsFactory:
    def make(*issuers: dict[str, Any], **top: Any) -> Settings:
        return validate_raw({"issuers": list(issuers) or [issuer_table()], **top}, {})

    return make


@pytest.fixture
async def providers_factory(
    clock: FakeClock, idp: FakeIdp, settings_factory: SettingsFactory
) -> AsyncIterator[Callable[..., IdentityProviders]]:
    made: list[IdentityProviders] = []

    def make(settings: Settings | None = None, fake: FakeIdp | None = None) -> IdentityProviders:
        http = (fake or idp).client()
        providers = IdentityProviders(settings or settings_factory(), clock=clock, http=http)
        made.append(providers)
        return providers

    yield make
    for providers in made:
        await providers.http.aclose()


@pytest.fixture
def claims_factory(clock: FakeClock) -> Callable[..., dict[str, Any]]:
    def make(**overrides: Any) -> dict[str, Any]:
        now = int(clock())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "alice",
            "aud": AUDIENCE,
            "exp": now + 300,
            "iat": now,
            "jti": "jti-1",
            "client_id": "ssoio-web",
            "scope": "openid profile email chat",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not ...}

    return make


@pytest.fixture
def token_factory(
    rsa_key: SigningKey, claims_factory: Callable[..., dict[str, Any]]
) -> TokenFactory:
    """Signed tokens; pass ``header=`` to override header members (``...`` removes one)."""

    def make(
        key: SigningKey | bytes | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        signer = key or rsa_key
        kid = signer.kid if isinstance(signer, SigningKey) else "hmac"
        head = {"alg": "RS256", "typ": "at+jwt", "kid": kid, **(header or {})}
        head = {k: v for k, v in head.items() if v is not ...}
        return forge(head, claims_factory(**claims), signer)

    return make
