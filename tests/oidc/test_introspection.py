"""RFC 7662 introspection of opaque tokens, cached and bounded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ssoio.errors import AuthenticationError, TokenRevoked
from ssoio.oidc.introspection import looks_opaque
from ssoio.oidc.providers import IdentityProviders
from tests.conftest import AUDIENCE, ISSUER, SettingsFactory, issuer_table
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp

OPAQUE = "2YotnFZFEjr1zCsicMWpAA"


@pytest.fixture
def providers(
    providers_factory: Callable[..., IdentityProviders], settings_factory: SettingsFactory,
    idp: FakeIdp,
) -> IdentityProviders:  # fmt: skip
    introspection = {
        "endpoint": idp.introspection_endpoint,
        "client_id": "ssoio",
        "client_secret": "introspection-secret",
        "cache_max_s": 60,
        "negative_cache_s": 10,
    }
    return providers_factory(settings_factory(issuer_table(introspection=introspection)))


def active(clock: FakeClock, **overrides: Any) -> dict[str, Any]:
    now = int(clock())
    answer = {"active": True, "sub": "alice", "aud": AUDIENCE, "exp": now + 300, "iat": now}
    return {k: v for k, v in {**answer, **overrides}.items() if v is not ...}


async def code_of(providers: IdentityProviders, token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await providers.verifier.verify(token)
    return caught.value.code


@pytest.mark.parametrize(
    ("token", "opaque"),
    [(OPAQUE, True), ("abc.def.ghi", False), ("tok en", False), ("a/b+c~d==", True)],
)
def test_looks_opaque(token: str, opaque: bool) -> None:
    assert looks_opaque(token) is opaque


async def test_active_token_verifies_and_is_cached(
    providers: IdentityProviders, idp: FakeIdp, clock: FakeClock
) -> None:
    idp.introspection[OPAQUE] = active(clock)
    verified = await providers.verifier.verify(OPAQUE)
    assert verified.claims["sub"] == "alice"
    assert verified.claims["iss"] == ISSUER
    assert idp.forms == [{"token": OPAQUE, "token_type_hint": "access_token"}]
    await providers.verifier.verify(OPAQUE)
    assert len(idp.forms) == 1


async def test_cache_is_bounded_by_cache_max(
    providers: IdentityProviders, idp: FakeIdp, clock: FakeClock
) -> None:
    idp.introspection[OPAQUE] = active(clock)
    await providers.verifier.verify(OPAQUE)
    clock.advance(61)
    idp.introspection[OPAQUE] = {"active": False}  # revoked at the provider meanwhile
    assert await code_of(providers, OPAQUE) == "token_revoked"
    assert len(idp.forms) == 2


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"active": False}, "token_revoked"),
        ({}, "token_revoked"),
        ({"active": "true"}, "token_revoked"),  # only a JSON true counts
        ({"exp": ...}, "claims_invalid"),
        ({"sub": ...}, "claims_invalid"),
        ({"aud": "other"}, "audience_mismatch"),
        ({"iss": "https://evil.test"}, "claims_invalid"),
        ({"exp": 1}, "token_expired"),
        ({"nonce": "x"}, "claims_invalid"),
    ],
)
async def test_refusals_are_cached_briefly(
    providers: IdentityProviders, idp: FakeIdp, clock: FakeClock,
    answer: dict[str, Any], code: str,
) -> None:  # fmt: skip
    raw = not answer or "active" in answer
    idp.introspection[OPAQUE] = answer if raw else active(clock, **answer)
    assert await code_of(providers, OPAQUE) == code
    assert await code_of(providers, OPAQUE) == code
    assert len(idp.forms) == 1
    clock.advance(11)
    await code_of(providers, OPAQUE)
    assert len(idp.forms) == 2


async def test_provider_down(providers: IdentityProviders, idp: FakeIdp) -> None:
    idp.down = True
    assert await code_of(providers, OPAQUE) == "idp_unavailable"


async def test_without_introspection_opaque_tokens_are_malformed(
    providers_factory: Callable[..., IdentityProviders], idp: FakeIdp
) -> None:
    assert await code_of(providers_factory(), OPAQUE) == "token_malformed"
    assert idp.total_requests == 0


async def test_inactive_token_refusal_names_what_was_seen(
    providers: IdentityProviders, idp: FakeIdp
) -> None:
    """Operator detail (issue #16): the provider's answer against what was expected; the
    client-facing message is unchanged."""
    idp.introspection[OPAQUE] = {"active": False}
    with pytest.raises(TokenRevoked) as caught:
        await providers.verifier.verify(OPAQUE)
    assert caught.value.as_dict() == {
        "code": "token_revoked",
        "message": "the provider reports the token as not active",
    }
    assert caught.value.detail == {"seen": {"active": False}, "expected": {"active": True}}
    assert OPAQUE not in repr(caught.value.for_operator())
