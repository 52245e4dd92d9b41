"""Keys kept fresh in the background (``IdentityProviders.keep_fresh``), the back-off it
keeps, fetch deadlines, and cached verifications that end with their key."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ssoio.errors import AuthenticationError, ClaimsInvalid, IdpUnavailable
from ssoio.oidc.backoff import MIN_RETRY_S, refresh_delay
from ssoio.oidc.claims import ClaimRules, check_access_token
from ssoio.oidc.http import fetch_json
from ssoio.oidc.providers import IdentityProviders
from tests.conftest import ISSUER, SettingsFactory, TokenFactory, issuer_table
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey
from tests.support.polling import eventually

Providers = Callable[..., IdentityProviders]


@pytest.mark.parametrize(
    ("due_in", "cooldown", "failing", "jitter", "expected"),
    [
        (300, 30, 0, 0.7, 300),  # loaded: until the key set is due
        (12.5, 30, 0, 0.0, 12.5),
        (-5, 30, 0, 0.0, MIN_RETRY_S),  # overdue: soon, never in a tight loop
        (300, 30, 1, 0.0, 0.5),  # 1 s, halved by the lowest jitter
        (300, 30, 1, 0.999999, 1.0),
        (300, 30, 3, 1.0, 4.0),
        (300, 30, 5, 1.0, 16.0),
        (300, 30, 6, 1.0, 30.0),  # capped at the cool-down
        (300, 30, 60, 1.0, 30.0),  # no overflow after many failures
        (300, 0, 9, 1.0, MIN_RETRY_S),  # a cool-down of 0 never means "retry at once"
        (300, 30, 2, 7.0, 2.0),  # jitter outside [0, 1) is clamped
    ],
)  # fmt: skip
def test_refresh_delay(
    due_in: float, cooldown: float, failing: int, jitter: float, expected: float
) -> None:
    assert refresh_delay(due_in, cooldown, failing, jitter) == pytest.approx(expected)


class RecordingSleeper:
    """A sleeper that records each delay and hands control back to the test."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.delays: list[float] = []
        self.woken = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.woken.set()
        await self.release.wait()
        self.release.clear()
        self.clock.advance(seconds)

    async def next_delay(self) -> float:
        """Let the refresher run to its next sleep; the delay it asked for."""
        count = len(self.delays)
        self.release.set()
        async with asyncio.timeout(5):
            while len(self.delays) == count:
                self.woken.clear()
                await self.woken.wait()
        return self.delays[-1]


@contextlib.asynccontextmanager
async def refreshing(providers: IdentityProviders) -> AsyncIterator[None]:
    task = asyncio.create_task(providers.keep_fresh())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_keys_load_without_a_client_once_the_provider_is_up(
    providers_factory: Providers, idp: FakeIdp, clock: FakeClock
) -> None:
    """README /readyz: retried with a bounded back-off while down, then loaded, then
    refreshed every keys.jwks_ttl_s, all without a token ever being verified."""
    providers = providers_factory()
    issuer = providers.settings.issuers[0]
    sleeper = RecordingSleeper(clock)
    providers.sleep = sleeper
    idp.down = True
    async with refreshing(providers):
        async with asyncio.timeout(5):
            await sleeper.woken.wait()
        delays = [sleeper.delays[0]] + [await sleeper.next_delay() for _ in range(7)]
        assert not providers.keys.status(issuer).loaded
        bounds = [1, 2, 4, 8, 16, 30, 30, 30]  # 1, 2, 4... s, capped at the cool-down
        assert all(b / 2 <= d <= b for d, b in zip(delays, bounds, strict=True)), delays
        attempts = providers.keys.status(issuer).fetches
        assert attempts == 8
        idp.down = False
        assert await sleeper.next_delay() == pytest.approx(300)  # loaded: until due
        assert providers.keys.status(issuer).loaded
        assert await sleeper.next_delay() == pytest.approx(300)  # refreshed when due
        assert providers.keys.status(issuer).fetches == attempts + 2
    assert providers.verifier.cache_lookups == 0


def refreshers() -> list[str]:
    """The names of the key refresh tasks running, sorted."""
    return sorted(
        t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("ssoio-keys-")
    )


async def test_a_reload_adds_and_removes_refreshers(
    providers_factory: Providers, settings_factory: SettingsFactory, idp: FakeIdp
) -> None:
    providers = providers_factory()
    async with refreshing(providers):
        assert await eventually(lambda: providers.keys.status(providers.settings.issuers[0]).loaded)
        second = issuer_table(name="second", issuer="https://idp.test/realms/other")
        providers.apply(settings_factory(issuer_table(), second))
        assert await eventually(lambda: refreshers() == ["ssoio-keys-acme", "ssoio-keys-second"])
        providers.apply(settings_factory(issuer_table()))
        assert await eventually(lambda: refreshers() == ["ssoio-keys-acme"])
    assert refreshers() == []


async def test_a_fetch_has_a_total_deadline() -> None:
    """httpx's timeout applies per read; a body arriving a byte at a time is cut off."""

    async def trickle() -> AsyncIterator[bytes]:
        for byte in b'{"keys": []}':
            await asyncio.sleep(0.05)
            yield bytes([byte])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=trickle())

    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        began = loop.time()
        with pytest.raises(IdpUnavailable):
            await fetch_json(http, "https://idp.test/jwks", max_bytes=1000, timeout_s=0.2)
        assert loop.time() - began < 0.5
        document = await fetch_json(http, "https://idp.test/jwks", max_bytes=1000, timeout_s=2)
    assert document == {"keys": []}


# -- cached verifications and their key -----------------------------------------------------


async def test_a_withdrawn_key_ends_its_cached_verifications(
    providers_factory: Providers, token_factory: TokenFactory, idp: FakeIdp, clock: FakeClock,
    rsa_key_2: SigningKey,
) -> None:  # fmt: skip
    providers = providers_factory()
    token = token_factory()
    await providers.verifier.verify(token)
    await providers.verifier.verify(token)
    assert providers.verifier.cache_hits == 1
    idp.keys[:] = [rsa_key_2]
    clock.advance(31)  # past the cool-down: a token of the new kid fetches the key set
    await providers.verifier.verify(token_factory(key=rsa_key_2))
    with pytest.raises(AuthenticationError) as caught:
        await providers.verifier.verify(token)
    assert caught.value.code == "key_unknown"
    assert providers.verifier.cache_hits == 1


async def test_a_failed_fetch_keeps_cached_verifications(
    providers_factory: Providers, token_factory: TokenFactory, idp: FakeIdp, clock: FakeClock,
) -> None:  # fmt: skip
    """Only a successful fetch withdraws keys: a provider outage changes nothing."""
    providers = providers_factory()
    token = token_factory(exp=int(clock()) + 3600)
    await providers.verifier.verify(token)
    idp.down = True
    clock.advance(301)
    assert await providers.keys.fetch_now(providers.settings.issuers[0]) is False
    await providers.verifier.verify(token)
    assert providers.verifier.cache_hits == 1


# -- tokens.max_lifetime_s --------------------------------------------------------------------

NOW = 1_800_000_000.0


def rules(settings_factory: SettingsFactory, max_lifetime_s: float = 86400) -> ClaimRules:
    return ClaimRules.from_settings(settings_factory().issuers[0], max_lifetime_s)


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "sub": "alice", "aud": "ssoio-api", "iat": NOW, "exp": NOW + 300,
            "client_id": "c", "jti": "j"}  # fmt: skip
    return {k: v for k, v in {**base, **overrides}.items() if v is not ...}


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({"exp": NOW + 86400}, None),
        ({"exp": NOW + 86401}, "the token's lifetime (exp - iat) is 86401 s, above "
                               "tokens.max_lifetime_s = 86400 s"),
        ({"exp": 1e20}, "the token's lifetime (exp - iat) is 1e+20 s, above "
                        "tokens.max_lifetime_s = 86400 s"),
        ({"iat": NOW - 7200, "exp": NOW + 86400 + 30}, "the token's lifetime (exp - iat) is "
                                                       "93630 s, above tokens.max_lifetime_s"),
        ({"iat": NOW - 10, "exp": NOW + 86400 - 10}, None),
    ],
)  # fmt: skip
def test_max_lifetime(
    settings_factory: SettingsFactory, overrides: dict[str, Any], refused: str | None
) -> None:
    if refused is None:
        assert check_access_token(claims(**overrides), rules(settings_factory), NOW) > NOW
        return
    with pytest.raises(ClaimsInvalid) as caught:
        check_access_token(claims(**overrides), rules(settings_factory), NOW)
    assert caught.value.message.startswith(refused)
    assert caught.value.claim == "exp"


def test_max_lifetime_from_now_when_iat_is_absent(settings_factory: SettingsFactory) -> None:
    """RFC 7662 §2.2: introspection answers may omit iat; exp - now is bounded all the same
    (with the leeway)."""
    no_iat = dataclasses.replace(rules(settings_factory), required=("sub", "exp"))
    assert check_access_token(claims(iat=..., exp=NOW + 86400 + 30), no_iat, NOW)
    with pytest.raises(ClaimsInvalid) as caught:
        check_access_token(claims(iat=..., exp=NOW + 86400 + 31), no_iat, NOW)
    assert caught.value.message == (
        "the token expires in 86431 s, above tokens.max_lifetime_s = 86400 s"
    )
    assert check_access_token(claims(exp=NOW + 10**9), rules(settings_factory, math.inf), NOW)
