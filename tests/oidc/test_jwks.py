"""The key store: caching, rotation, cool-down, stale serving, bounded input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from ssoio.errors import AuthenticationError, IdpUnavailable
from ssoio.oidc.jwks import parse_jwks
from ssoio.oidc.providers import IdentityProviders
from tests.conftest import ISSUER, SettingsFactory, TokenFactory, issuer_table
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey

Providers = Callable[..., IdentityProviders]
DISCOVERY = f"{ISSUER}/.well-known/openid-configuration"


async def code_of(providers: IdentityProviders, token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await providers.verifier.verify(token)
    return caught.value.code


class TestFetching:
    """Keys come from discovery's jwks_uri, or the configured one, and are cached."""

    async def test_discovery_then_jwks_then_no_more_io(
        self, providers_factory: Providers, token_factory: TokenFactory, idp: FakeIdp
    ) -> None:
        providers = providers_factory()
        for sub in ("alice", "bob", "carol"):
            await providers.verifier.verify(token_factory(sub=sub))
        assert dict(idp.requests) == {DISCOVERY: 1, idp.jwks_uri: 1}

    async def test_configured_jwks_uri_skips_discovery(
        self,
        providers_factory: Providers,
        settings_factory: SettingsFactory,
        token_factory: TokenFactory,
        idp: FakeIdp,
    ) -> None:
        providers = providers_factory(settings_factory(issuer_table(jwks_uri=idp.jwks_uri)))
        await providers.verifier.verify(token_factory())
        assert dict(idp.requests) == {idp.jwks_uri: 1}

    async def test_discovery_naming_another_issuer_is_refused(
        self, providers_factory: Providers, token_factory: TokenFactory, idp: FakeIdp
    ) -> None:
        # OIDC Discovery §4.3: a document for another issuer must not be used.
        idp.discovery_issuer = "https://evil.test/realms/acme"
        providers = providers_factory()
        assert await code_of(providers, token_factory()) == "idp_unavailable"
        assert idp.fetches(idp.jwks_uri) == 0

    async def test_warm_loads_keys_before_the_first_token(
        self, providers_factory: Providers, token_factory: TokenFactory, idp: FakeIdp
    ) -> None:
        providers = providers_factory()
        await providers.warm()
        assert providers.keys.status(providers.settings.issuers[0]).kids == ("rsa-1",)
        idp.down = True
        await providers.verifier.verify(token_factory())

    async def test_background_refresh_after_ttl_keeps_hot_path_free_of_io(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
        clock: FakeClock,
    ) -> None:
        providers = providers_factory()
        await providers.verifier.verify(token_factory())
        clock.advance(301)  # past jwks_ttl_s
        idp.down = True  # a background refresh will fail; the hot path must not care
        await providers.verifier.verify(token_factory(sub="bob"))
        await asyncio.sleep(0)  # let the background refresh run
        await providers.verifier.verify(token_factory(sub="carol"))
        assert idp.fetches(idp.jwks_uri) == 2


class TestRotation:
    """An unknown kid triggers at most one refetch per cool-down, single-flight."""

    async def test_new_key_verifies_after_one_refetch(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
        clock: FakeClock,
        rsa_key_2: SigningKey,
    ) -> None:
        providers = providers_factory()
        await providers.verifier.verify(token_factory())
        idp.keys.insert(0, rsa_key_2)
        clock.advance(30)
        await providers.verifier.verify(token_factory(rsa_key_2))
        assert idp.fetches(idp.jwks_uri) == 2

    async def test_flood_of_random_kids_costs_one_fetch_per_cooldown(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
        clock: FakeClock,
    ) -> None:
        providers = providers_factory()
        await providers.verifier.verify(token_factory())
        clock.advance(31)
        flood = [token_factory(header={"kid": f"random-{i}"}) for i in range(200)]
        results = await asyncio.gather(
            *(providers.verifier.verify(t) for t in flood), return_exceptions=True
        )
        assert {getattr(r, "code", None) for r in results} == {"key_unknown"}
        assert idp.fetches(idp.jwks_uri) == 2  # the first load and one refetch
        clock.advance(10)
        for token in flood[:50]:
            assert await code_of(providers, token) == "key_unknown"
        assert idp.fetches(idp.jwks_uri) == 2
        clock.advance(20)
        assert await code_of(providers, flood[0]) == "key_unknown"
        assert idp.fetches(idp.jwks_uri) == 3

    async def test_concurrent_first_tokens_share_one_fetch(
        self, providers_factory: Providers, token_factory: TokenFactory, idp: FakeIdp
    ) -> None:
        providers = providers_factory()
        tokens = [token_factory(sub=f"user-{i}") for i in range(50)]
        await asyncio.gather(*(providers.verifier.verify(t) for t in tokens))
        assert dict(idp.requests) == {DISCOVERY: 1, idp.jwks_uri: 1}

    async def test_withdrawn_key_stops_verifying(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
        clock: FakeClock,
        rsa_key_2: SigningKey,
    ) -> None:
        providers = providers_factory()
        await providers.verifier.verify(token_factory())
        idp.keys[:] = [rsa_key_2]
        clock.advance(31)
        await providers.verifier.verify(token_factory(rsa_key_2))  # refetch: rsa-1 withdrawn
        assert await code_of(providers, token_factory(sub="bob")) == "key_unknown"


class TestProviderDown:
    """Stale keys serve while the provider is down, up to the stale limit."""

    async def test_down_at_start(
        self, providers_factory: Providers, token_factory: TokenFactory, idp: FakeIdp
    ) -> None:
        idp.down = True
        providers = providers_factory()
        assert await code_of(providers, token_factory()) == "idp_unavailable"

    async def test_down_at_start_is_retried_after_the_cooldown_only(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
        clock: FakeClock,
    ) -> None:
        idp.down = True
        providers = providers_factory()
        for sub in ("a", "b", "c"):
            assert await code_of(providers, token_factory(sub=sub)) == "idp_unavailable"
        assert idp.total_requests == 1
        idp.down = False
        clock.advance(30)
        await providers.verifier.verify(token_factory())

    async def test_failures_are_retried_with_a_growing_back_off(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
        clock: FakeClock,
    ) -> None:
        idp.down = True
        providers = providers_factory()
        fetches = []
        for step in (0, 0.5, 0.6, 1.0, 2.0, 4.0, 8.0, 16.0, 29.0):
            clock.advance(step)
            assert await code_of(providers, token_factory()) == "idp_unavailable"
            fetches.append(idp.fetches(DISCOVERY))
        # tried at 0, 1.1 (1 s after), 4.1 (2 s), 8.1 (4 s), 16.1 (8 s), 32.1 (16 s); then
        # the delay is capped at the 30 s cool-down, so 61.1 (29 s after) is not yet
        assert fetches == [1, 1, 2, 2, 3, 4, 5, 6, 6]
        idp.down = False
        clock.advance(30)
        await providers.verifier.verify(token_factory())

    async def test_stale_keys_serve_until_the_limit(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
        clock: FakeClock,
    ) -> None:
        providers = providers_factory()
        await providers.verifier.verify(token_factory())
        idp.down = True
        clock.advance(21600 - 1)
        await providers.verifier.verify(token_factory(sub="bob"))
        status = providers.keys.status(providers.settings.issuers[0])
        assert status.loaded
        assert not status.fresh
        clock.advance(2)
        assert await code_of(providers, token_factory(sub="carol")) == "idp_unavailable"
        assert not providers.keys.status(providers.settings.issuers[0]).loaded

    @pytest.mark.parametrize(
        "body",
        [
            b"<html>oops</html>",
            b"[]",
            b'{"keys": "none"}',
            b'{"keys": []}',
            b'{"keys": [{"kty": "RSA", "kid": "x", "n": "!!", "e": "AQAB"}]}',
            b'{"keys": [{"kty": "PQC", "kid": "rsa-1"}]}',
            json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "use": "enc"}]}).encode(),
        ],
    )
    async def test_junk_jwks_keeps_the_old_keys(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
        clock: FakeClock,
        body: bytes,
    ) -> None:
        providers = providers_factory()
        await providers.verifier.verify(token_factory())
        idp.jwks_body = body
        clock.advance(31)
        assert await code_of(providers, token_factory(header={"kid": "new"})) == "key_unknown"
        await providers.verifier.verify(token_factory(sub="bob"))

    async def test_oversized_jwks_is_refused(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
    ) -> None:
        idp.jwks_body = json.dumps({**idp.jwks(), "padding": "x" * 300_000}).encode()
        assert await code_of(providers_factory(), token_factory()) == "idp_unavailable"


class TestParseJwks:
    """Pure parsing of a JWK set: skip what cannot be used, bound the rest."""

    def test_unknown_and_broken_keys_beside_good_ones(self, rsa_key: SigningKey) -> None:
        document: dict[str, Any] = {
            "keys": [
                {"kty": "PQC", "kid": "future"},
                {"kty": "RSA", "kid": "broken", "n": "###", "e": "AQAB"},
                {"kty": "RSA", "kid": 7, "n": "AQAB", "e": "AQAB"},
                {**rsa_key.jwk, "kid": "enc-key", "use": "enc"},
                {**rsa_key.jwk, "kid": "no-verify", "key_ops": ["encrypt"]},
                {**rsa_key.jwk, "kid": "k" * 300},
                {"kty": "oct", "kid": "short-secret", "k": "c2VjcmV0"},  # 48 bits < 112
                {"kty": "oct", "kid": "pem", "k": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0"},
                "not an object",
                rsa_key.jwk,
            ]
        }
        key_set = parse_jwks(document, max_keys=32)
        assert sorted(k for k in key_set.by_kid if k) == ["rsa-1"]
        assert key_set.asymmetric

    def test_too_many_keys(self, rsa_key: SigningKey) -> None:
        with pytest.raises(IdpUnavailable, match="more than 2 keys"):
            parse_jwks({"keys": [rsa_key.jwk] * 3}, max_keys=2)

    def test_same_kid_for_two_key_types(self, rsa_key: SigningKey, ec_key: SigningKey) -> None:
        key_set = parse_jwks({"keys": [rsa_key.jwk, {**ec_key.jwk, "kid": "rsa-1"}]}, 32)
        assert [k.key_type for k in key_set.by_kid["rsa-1"]] == ["RSA", "EC"]


class TestKidless:
    """A token without kid is accepted only when exactly one key fits."""

    async def test_single_key(
        self, providers_factory: Providers, token_factory: TokenFactory
    ) -> None:
        await providers_factory().verifier.verify(token_factory(header={"kid": ...}))

    async def test_several_keys_is_ambiguous(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
        rsa_key_2: SigningKey,
    ) -> None:
        idp.keys.append(rsa_key_2)
        token = token_factory(header={"kid": ...})
        assert await code_of(providers_factory(), token) == "key_unknown"
