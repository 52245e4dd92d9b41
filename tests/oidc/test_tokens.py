"""Access-token verification: every check, with the attack it stops being refused."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from ssoio.errors import AuthenticationError
from ssoio.oidc.providers import IdentityProviders
from tests.conftest import AUDIENCE, ISSUER, SettingsFactory, TokenFactory, issuer_table
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey, b64url, forge

Providers = Callable[..., IdentityProviders]


async def refusal(providers: IdentityProviders, token: object) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await providers.verifier.verify(token)
    return caught.value.code


class TestGenuineTokens:
    """A correct token verifies and yields its claims and issuer."""

    async def test_rs256_token_verifies(
        self, providers_factory: Providers, token_factory: TokenFactory
    ) -> None:
        verified = await providers_factory().verifier.verify(token_factory())
        assert verified.claims["sub"] == "alice"
        assert verified.issuer.name == "acme"
        assert verified.expires_at == verified.claims["exp"]

    async def test_es256_token_verifies(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        settings_factory: SettingsFactory,
        idp: FakeIdp,
        ec_key: SigningKey,
    ) -> None:
        idp.keys.append(ec_key)
        settings = settings_factory(issuer_table(algorithms=["RS256", "ES256"]))
        token = token_factory(ec_key, header={"alg": "ES256"})
        assert (await providers_factory(settings).verifier.verify(token)).claims["sub"] == "alice"

    async def test_verified_claims_are_read_only(
        self, providers_factory: Providers, token_factory: TokenFactory
    ) -> None:
        verified = await providers_factory().verifier.verify(token_factory())
        with pytest.raises(TypeError):
            verified.claims["sub"] = "mallory"  # type: ignore[index]


class TestStructure:
    """Anything that is not a well-formed compact JWS is refused before any crypto."""

    @pytest.mark.parametrize(
        ("token", "code"),
        [
            (None, "token_missing"),
            ("", "token_missing"),
            (12345, "token_missing"),
            ("abc", "token_malformed"),
            ("a.b", "token_malformed"),
            ("a.b.c.d", "token_malformed"),
            ("a.b.c.d.e", "token_malformed"),  # JWE
            ("..", "token_malformed"),
            ("eyJ.eyJ.", "token_malformed"),
            ("e$J.eyJ.sig", "token_malformed"),
            ("eyJhbGciOiJSUzI1NiJ9.e30=.c2ln", "token_malformed"),  # padding
            ("eyJhbGciOiJSUzI1NiJ9.a.c2ln", "token_malformed"),  # impossible base64 length
            ("x" * 20000, "token_malformed"),  # over the size limit
        ],
    )
    async def test_malformed(self, providers_factory: Providers, token: object, code: str) -> None:
        assert await refusal(providers_factory(), token) == code

    @pytest.mark.parametrize(
        "header",
        [b"[]", b"null", b"not json", b'{"alg":"RS256","alg":"HS256"}', b"\xff\xfe", b'"RS256"'],
    )
    async def test_header_not_a_unique_json_object(
        self, providers_factory: Providers, claims_factory: Callable[..., dict[str, Any]],
        rsa_key: SigningKey, header: bytes,
    ) -> None:  # fmt: skip
        token = forge(header, claims_factory(), rsa_key, alg="RS256")
        assert await refusal(providers_factory(), token) == "token_malformed"

    @pytest.mark.parametrize(
        "payload",
        [
            b"[]",
            b"42",
            b"not json",
            b'{"sub":"alice","sub":"admin"}',  # RFC 7519 §4: duplicate claim names
            b'{"exp": NaN}',
            b'{"exp": Infinity}',
            b"\x80",
        ],
    )
    async def test_payload_not_a_unique_json_object(
        self, providers_factory: Providers, rsa_key: SigningKey, payload: bytes
    ) -> None:
        token = forge({"alg": "RS256", "typ": "at+jwt", "kid": rsa_key.kid}, payload, rsa_key)
        assert await refusal(providers_factory(), token) == "token_malformed"

    @pytest.mark.parametrize(
        ("header", "code"),
        [
            ({"crit": ["exp"], "exp": 1}, "token_malformed"),  # RFC 7515 §4.1.11
            ({"b64": False, "crit": ["b64"]}, "token_malformed"),  # RFC 7797
            ({"zip": "DEF"}, "token_malformed"),
            ({"cty": "JWT"}, "token_malformed"),  # nested JWT, RFC 7519 §5.2
            ({"kid": 7}, "token_malformed"),
            ({"kid": {"$ne": ""}}, "token_malformed"),
            ({"alg": ...}, "token_malformed"),
            ({"alg": 256}, "token_malformed"),
        ],
    )
    async def test_refused_headers(
        self, providers_factory: Providers, token_factory: TokenFactory,
        header: dict[str, Any], code: str,
    ) -> None:  # fmt: skip
        assert await refusal(providers_factory(), token_factory(header=header)) == code


class TestAlgorithms:
    """Only the issuer's allow-listed asymmetric algorithms verify (RFC 8725 §3.1)."""

    @pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
    async def test_alg_none_in_any_case(
        self, providers_factory: Providers, claims_factory: Callable[..., dict[str, Any]], alg: str
    ) -> None:
        token = forge({"alg": alg, "typ": "at+jwt"}, claims_factory(), None)
        assert await refusal(providers_factory(), token) == "algorithm_not_allowed"

    async def test_alg_outside_allow_list(
        self, providers_factory: Providers, token_factory: TokenFactory
    ) -> None:
        token = token_factory(header={"alg": "RS512"})
        assert await refusal(providers_factory(), token) == "algorithm_not_allowed"

    async def test_unknown_alg(
        self, providers_factory: Providers, token_factory: TokenFactory
    ) -> None:
        token = token_factory(header={"alg": "XS999"})
        assert await refusal(providers_factory(), token) == "algorithm_not_allowed"

    async def test_hmac_signed_with_the_public_key_is_refused(
        self,
        providers_factory: Providers,
        settings_factory: SettingsFactory,
        token_factory: TokenFactory,
        rsa_key: SigningKey,
    ) -> None:
        # Key confusion: the attacker signs HS256 with the RSA public key everyone can read.
        settings = settings_factory(issuer_table(algorithms=["RS256", "HS256"]))
        secret = json.dumps(rsa_key.jwk).encode()
        token = token_factory(secret, header={"alg": "HS256", "kid": rsa_key.kid})
        assert await refusal(providers_factory(settings), token) == "algorithm_not_allowed"

    async def test_rs256_token_with_ec_kid_is_refused(
        self,
        providers_factory: Providers,
        settings_factory: SettingsFactory,
        token_factory: TokenFactory,
        idp: FakeIdp,
        ec_key: SigningKey,
    ) -> None:
        idp.keys.append(ec_key)
        settings = settings_factory(issuer_table(algorithms=["RS256", "ES256"]))
        token = token_factory(header={"kid": ec_key.kid})
        assert await refusal(providers_factory(settings), token) == "key_unknown"

    async def test_jwk_alg_pins_the_algorithm(
        self,
        providers_factory: Providers,
        settings_factory: SettingsFactory,
        token_factory: TokenFactory,
        rsa_key: SigningKey,
    ) -> None:
        pinned = SigningKey(rsa_key.kid, rsa_key.private, extra={"alg": "PS256"})
        idp = FakeIdp(issuer=ISSUER, keys=[pinned])
        settings = settings_factory(issuer_table(algorithms=["RS256", "PS256"]))
        providers = providers_factory(settings, idp)
        assert await refusal(providers, token_factory(rsa_key)) == "key_unknown"
        ps = token_factory(rsa_key, header={"alg": "PS256"})
        assert (await providers.verifier.verify(ps)).claims["sub"] == "alice"


class TestSignature:
    """The signature must be the issuer's, over exactly these bytes."""

    async def test_signed_by_another_key(
        self, providers_factory: Providers, token_factory: TokenFactory, rsa_key_2: SigningKey
    ) -> None:
        impostor = SigningKey("rsa-1", rsa_key_2.private)  # claims the issuer's kid
        assert await refusal(providers_factory(), token_factory(impostor)) == "signature_invalid"

    async def test_payload_swapped_after_signing(
        self, providers_factory: Providers, token_factory: TokenFactory,
        claims_factory: Callable[..., dict[str, Any]],
    ) -> None:  # fmt: skip
        header, _, signature = token_factory().split(".")
        evil = b64url(json.dumps(claims_factory(sub="admin")).encode())
        token = f"{header}.{evil}.{signature}"
        assert await refusal(providers_factory(), token) == "signature_invalid"

    async def test_truncated_and_empty_signature(
        self, providers_factory: Providers, token_factory: TokenFactory
    ) -> None:
        token = token_factory()
        providers = providers_factory()
        assert await refusal(providers, token[:-10]) == "signature_invalid"
        assert await refusal(providers, token.rsplit(".", 1)[0] + ".") == "token_malformed"

    @pytest.mark.parametrize("member", ["jku", "x5u", "jwk", "x5c"])
    async def test_header_key_hints_are_never_used_or_fetched(
        self,
        providers_factory: Providers,
        token_factory: TokenFactory,
        idp: FakeIdp,
        rsa_key_2: SigningKey,
        member: str,
    ) -> None:
        hints: dict[str, Any] = {
            "jku": "https://evil.test/jwks.json",
            "x5u": "https://evil.test/cert.pem",
            "jwk": rsa_key_2.jwk,
            "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
        }
        token = token_factory(rsa_key_2, header={"kid": "attacker", member: hints[member]})
        providers = providers_factory()
        assert await refusal(providers, token) in {"key_unknown", "signature_invalid"}
        assert set(idp.requests) <= {idp.jwks_uri, f"{ISSUER}/.well-known/openid-configuration"}


class TestIssuer:
    """The issuer is chosen by an exact ``iss`` match, never by the header."""

    @pytest.mark.parametrize(
        "iss",
        [
            ISSUER + "/",
            ISSUER.upper(),
            ISSUER.replace("https", "http"),
            "https://evil.test/realms/acme",
            ISSUER + "%00",
            None,
            ...,
            [ISSUER],
            {"url": ISSUER},
        ],
    )
    async def test_unknown_issuer(
        self, providers_factory: Providers, token_factory: TokenFactory, iss: Any
    ) -> None:
        assert await refusal(providers_factory(), token_factory(iss=iss)) == "issuer_unknown"

    async def test_two_issuers_sharing_a_kid_cannot_verify_each_other(
        self,
        settings_factory: SettingsFactory,
        clock: FakeClock,
        token_factory: TokenFactory,
        rsa_key: SigningKey,
        rsa_key_2: SigningKey,
    ) -> None:
        other = "https://other.test"
        idp_a = FakeIdp(issuer=ISSUER, keys=[rsa_key])
        idp_b = FakeIdp(issuer=other, keys=[SigningKey(rsa_key.kid, rsa_key_2.private)])

        def route(request: Any) -> Any:
            fake = idp_b if str(request.url).startswith(other) else idp_a
            return fake.handle(request)

        import httpx

        http = httpx.AsyncClient(transport=httpx.MockTransport(route))
        settings = settings_factory(issuer_table(), issuer_table(name="other", issuer=other))
        async with IdentityProviders(settings, clock=clock, http=http) as providers:
            verifier = providers.verifier
            assert (await verifier.verify(token_factory(rsa_key))).issuer.name == "acme"
            token_b = token_factory(rsa_key_2, header={"kid": rsa_key.kid}, iss=other)
            assert (await verifier.verify(token_b)).issuer.name == "other"
            # B's key under the shared kid must not verify a token claiming issuer A...
            forged_a = token_factory(SigningKey(rsa_key.kid, rsa_key_2.private))
            assert await refusal(providers, forged_a) == "signature_invalid"
            # ...and A's key must not verify a token claiming issuer B.
            assert await refusal(providers, token_factory(rsa_key, iss=other)) == (
                "signature_invalid"
            )
        await http.aclose()


class TestClaims:
    """RFC 9068 / RFC 7519 claim checks with a fixed clock."""

    @pytest.mark.parametrize(
        ("claims", "code"),
        [
            ({"exp": ...}, "claims_invalid"),
            ({"exp": None}, "claims_invalid"),
            ({"exp": "1900000000"}, "claims_invalid"),
            ({"exp": True}, "claims_invalid"),
            ({"exp": [1]}, "claims_invalid"),
            ({"iat": ...}, "claims_invalid"),
            ({"iat": "now"}, "claims_invalid"),
            ({"sub": ...}, "claims_invalid"),
            ({"sub": ""}, "claims_invalid"),
            ({"sub": "   "}, "claims_invalid"),
            ({"sub": 42}, "claims_invalid"),
            ({"sub": ["alice"]}, "claims_invalid"),
            ({"sub": "a" * 300}, "claims_invalid"),
            ({"client_id": ...}, "claims_invalid"),  # RFC 9068 §2.2 in strict mode
            ({"jti": ...}, "claims_invalid"),
            ({"aud": ...}, "audience_mismatch"),
            ({"aud": "account"}, "audience_mismatch"),
            ({"aud": ["account", "broker"]}, "audience_mismatch"),
            ({"aud": []}, "audience_mismatch"),
            ({"aud": [AUDIENCE, 7]}, "audience_mismatch"),
            ({"aud": {"0": AUDIENCE}}, "audience_mismatch"),
            ({"aud": AUDIENCE.upper()}, "audience_mismatch"),
            ({"nbf": "soon"}, "claims_invalid"),
        ],
    )
    async def test_claim_refused(
        self, providers_factory: Providers, token_factory: TokenFactory,
        claims: dict[str, Any], code: str,
    ) -> None:  # fmt: skip
        assert await refusal(providers_factory(), token_factory(**claims)) == code

    async def test_audience_array_containing_ours(
        self, providers_factory: Providers, token_factory: TokenFactory
    ) -> None:
        token = token_factory(aud=["account", AUDIENCE])
        assert (await providers_factory().verifier.verify(token)).claims["sub"] == "alice"

    @pytest.mark.parametrize(
        ("offset", "code"),
        [(-31, "token_expired"), (-3600, "token_expired"), (-29, None), (0, None)],
    )
    async def test_expiry_with_leeway(
        self, providers_factory: Providers, token_factory: TokenFactory, clock: FakeClock,
        offset: int, code: str | None,
    ) -> None:  # fmt: skip
        token = token_factory(exp=int(clock()) + offset, iat=int(clock()) - 4000)
        if code is None:
            await providers_factory().verifier.verify(token)
        else:
            assert await refusal(providers_factory(), token) == code

    @pytest.mark.parametrize(
        ("claims", "code"),
        [
            ({"nbf": 60}, "token_not_yet_valid"),
            ({"iat": 60}, "token_not_yet_valid"),
            ({"nbf": 20}, None),  # inside the 30 s leeway
            ({"iat": 20}, None),
        ],
    )
    async def test_not_yet_valid(
        self, providers_factory: Providers, token_factory: TokenFactory, clock: FakeClock,
        claims: dict[str, int], code: str | None,
    ) -> None:  # fmt: skip
        token = token_factory(**{k: int(clock()) + v for k, v in claims.items()})
        if code is None:
            await providers_factory().verifier.verify(token)
        else:
            assert await refusal(providers_factory(), token) == code

    async def test_huge_exp_is_a_number_not_a_crash(
        self, providers_factory: Providers, token_factory: TokenFactory
    ) -> None:
        """(It used to be accepted; tokens.max_lifetime_s now refuses it, without a crash.)"""
        assert await refusal(providers_factory(), token_factory(exp=1e300)) == "claims_invalid"
        token = forge(
            {"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"},
            b'{"exp": 1e999}',
            SigningKey("x", SigningKey.rsa("unused").private),
        )
        assert await refusal(providers_factory(), token) in {"token_malformed", "issuer_unknown"}
        assert not math.isinf(1e300)

    async def test_required_claims(
        self, providers_factory: Providers, settings_factory: SettingsFactory,
        token_factory: TokenFactory,
    ) -> None:  # fmt: skip
        providers = providers_factory(settings_factory(issuer_table(required_claims=["tenant"])))
        assert await refusal(providers, token_factory()) == "claims_invalid"
        assert (await providers.verifier.verify(token_factory(tenant="acme"))).claims["tenant"]

    @pytest.mark.parametrize(
        ("claims", "code"),
        [
            ({"client_id": "ssoio-web"}, None),
            ({"client_id": "other-app"}, "claims_invalid"),
            ({"client_id": ..., "azp": "ssoio-web"}, None),
            ({"client_id": ..., "azp": "other-app"}, "claims_invalid"),
            ({"client_id": ..., "azp": ...}, "claims_invalid"),
        ],
    )
    async def test_authorized_parties(
        self, providers_factory: Providers, settings_factory: SettingsFactory,
        token_factory: TokenFactory, claims: dict[str, Any], code: str | None,
    ) -> None:  # fmt: skip
        settings = settings_factory(
            issuer_table(authorized_parties=["ssoio-web"], token_types=["at+jwt", "JWT"])
        )
        providers = providers_factory(settings)
        if code is None:
            await providers.verifier.verify(token_factory(**claims))
        else:
            assert await refusal(providers, token_factory(**claims)) == code


class TestTokenTypes:
    """Strict RFC 9068 mode needs ``at+jwt``; compatible mode also takes ``JWT``."""

    @pytest.mark.parametrize(
        ("typ", "strict", "compatible"),
        [
            ("at+jwt", True, True),
            ("AT+JWT", True, True),
            ("application/at+jwt", True, True),
            ("JWT", False, True),
            ("jwt", False, True),
            (..., False, True),
            ("id_token+jwt", False, False),
            ("logout+jwt", False, False),
            ("secevent+jwt", False, False),
            ("", False, True),
            (5, False, False),
        ],
    )
    async def test_typ(
        self, providers_factory: Providers, settings_factory: SettingsFactory,
        token_factory: TokenFactory, typ: Any, strict: bool, compatible: bool,
    ) -> None:  # fmt: skip
        compat = settings_factory(issuer_table(token_types=["at+jwt", "JWT"]))
        for settings, accepted in ((settings_factory(), strict), (compat, compatible)):
            token = token_factory(header={"typ": typ})
            providers = providers_factory(settings)
            if accepted:
                await providers.verifier.verify(token)
            else:
                assert await refusal(providers, token) == "claims_invalid"

    @pytest.mark.parametrize(
        "id_token_claims",
        [
            {"nonce": "n-0S6_WzA2Mj"},
            {"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"},
            {"c_hash": "LDktKdoQak3Pk0cnXxCltA"},
            {"typ": "ID", "azp": "ssoio-web"},  # Keycloak's ID token marker
        ],
    )
    async def test_id_token_presented_as_access_token(
        self, providers_factory: Providers, settings_factory: SettingsFactory,
        token_factory: TokenFactory, id_token_claims: dict[str, Any],
    ) -> None:  # fmt: skip
        # Even when the operator lists the client id as an audience and accepts "JWT".
        settings = settings_factory(
            issuer_table(audiences=[AUDIENCE, "ssoio-web"], token_types=["at+jwt", "JWT"])
        )
        token = token_factory(header={"typ": "JWT"}, aud="ssoio-web", **id_token_claims)
        assert await refusal(providers_factory(settings), token) == "claims_invalid"


class TestVerifiedTokenCache:
    """A verified token is cached by hash until it expires, and never longer."""

    async def test_cache_hit_skips_verification_and_fetches(
        self, providers_factory: Providers, token_factory: TokenFactory, idp: FakeIdp
    ) -> None:
        providers = providers_factory()
        token = token_factory()
        first = await providers.verifier.verify(token)
        idp.down = True
        assert await providers.verifier.verify(token) is first

    async def test_cached_token_still_expires_on_time(
        self, providers_factory: Providers, token_factory: TokenFactory, clock: FakeClock
    ) -> None:
        providers = providers_factory()
        token = token_factory(exp=int(clock()) + 60)
        await providers.verifier.verify(token)
        clock.advance(60 + 30)  # exactly exp + leeway: still valid
        await providers.verifier.verify(token)
        clock.advance(1)
        assert await refusal(providers, token) == "token_expired"

    async def test_refusals_are_not_cached(
        self, providers_factory: Providers, token_factory: TokenFactory, clock: FakeClock
    ) -> None:
        providers = providers_factory()
        token = token_factory(nbf=int(clock()) + 100)
        assert await refusal(providers, token) == "token_not_yet_valid"
        clock.advance(100)
        await providers.verifier.verify(token)

    async def test_cache_can_be_disabled(
        self,
        providers_factory: Providers,
        settings_factory: SettingsFactory,
        token_factory: TokenFactory,
        idp: FakeIdp,
    ) -> None:
        providers = providers_factory(settings_factory(tokens={"cache_size": 0}))
        token = token_factory()
        first = await providers.verifier.verify(token)
        assert await providers.verifier.verify(token) is not first


async def test_keycloak_bearer_tokens_may_carry_a_nonce(
    providers_factory: Providers, settings_factory: SettingsFactory, token_factory: TokenFactory
) -> None:
    # Keycloak before 25 copies the login nonce into access tokens marked "typ": "Bearer".
    settings = settings_factory(issuer_table(token_types=["at+jwt", "JWT"]))
    token = token_factory(header={"typ": "JWT"}, nonce="n-1", typ="Bearer")
    await providers_factory(settings).verifier.verify(token)


@pytest.mark.parametrize("claim", ["client_id", "azp", "cid"])
async def test_authorized_party_claim_names(
    providers_factory: Providers, settings_factory: SettingsFactory, token_factory: TokenFactory,
    claim: str,
) -> None:  # fmt: skip
    settings = settings_factory(
        issuer_table(authorized_parties=["web"], token_types=["at+jwt", "JWT"])
    )
    claims: dict[str, Any] = {"client_id": ..., claim: "web"}
    token = token_factory(header={"typ": "JWT"}, **claims)
    await providers_factory(settings).verifier.verify(token)
