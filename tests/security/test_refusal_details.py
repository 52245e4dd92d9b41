"""Operator messages name what was seen (issue #16 item 2).

For each connect refusal code, on a live node: the client still gets only the stable code
and its short message (DESIGN.md), while the ``auth.connect.refused`` audit line carries a
``detail`` with what the token carried and what was expected (and a hint where there is
one), and no token or signature appears anywhere (``Node.assert_clean``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ssoio.errors import (
    AlgorithmNotAllowed,
    AudienceMismatch,
    ClaimsInvalid,
    IssuerUnknown,
    KeyUnknown,
    SignatureInvalid,
    SsoioError,
    TokenExpired,
    TokenMalformed,
    TokenMissing,
    TokenNotYetValid,
)
from tests.security.harness import AUDIENCE, ISSUER, Node, example_raw, running_node, settings_from
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey

OTHER_KEY = SigningKey.rsa("rsa-1")  # the node's kid, another key: a forged signature
STRANGER = SigningKey.rsa("rotated-away")


def _now(node: Node) -> int:
    return int(node.clock())


# (code, error class, auth for the CONNECT, substrings the detail's JSON must contain)
CASES: list[tuple[str, type[SsoioError], Callable[[Node], Any], list[str]]] = [
    ("token_missing", TokenMissing, lambda n: {},
     ['"seen": "no auth.token, no Authorization header, no session cookie"']),
    ("token_malformed", TokenMalformed, lambda n: {"token": "abc.defghijklmnop"},
     ['"seen": {"bytes": 17, "parts": 2}', '"expected": "a compact JWS: three base64url']),
    ("token_expired", TokenExpired,
     lambda n: {"token": n.token(exp=_now(n) - 100, iat=_now(n) - 400)},
     ['"at": "100 s ago"', '"leeway_s": 30.0', "beyond the leeway of 30 s"]),
    ("token_not_yet_valid", TokenNotYetValid, lambda n: {"token": n.token(nbf=_now(n) + 600)},
     ['"nbf":', '"at": "in 600 s"', '"leeway_s": 30.0']),
    ("signature_invalid", SignatureInvalid, lambda n: {"token": n.token(key=OTHER_KEY)},
     ['"seen": {"alg": "RS256", "kid": "rsa-1"}', "a signature by the key rsa-1 of primary"]),
    ("algorithm_not_allowed", AlgorithmNotAllowed,
     lambda n: {"token": n.token(header={"alg": "PS256"})},
     ['"seen": {"alg": "PS256"}', '"expected": {"algorithms": ["RS256"]}']),
    ("issuer_unknown", IssuerUnknown, lambda n: {"token": n.token(iss=ISSUER + "/")},
     [f'"iss": "{ISSUER}/"', f'"issuers": ["{ISSUER}"]', "trailing slash: the provider's issuer "
      f"has trailing slash; issuers.issuer must be exactly '{ISSUER}/'"]),
    ("audience_mismatch", AudienceMismatch, lambda n: {"token": n.token(aud="account")},
     ['"seen": {"aud": ["account"]}', f'"expected": {{"audiences": ["{AUDIENCE}"]}}',
      f"have the provider add '{AUDIENCE}' to the token's aud"]),
    ("key_unknown", KeyUnknown, lambda n: {"token": n.token(key=STRANGER)},
     ['"seen": {"alg": "RS256", "kid": "rotated-away"}', '"expected": {"kids": ["rsa-1"]}',
      "a key the provider no longer (or not yet) publishes"]),
    ("claims_invalid", ClaimsInvalid, lambda n: {"token": n.token(header={"typ": "id+jwt"})},
     ['"seen": {"typ": "id+jwt"}', '"token_types": ["at+jwt", "JWT"]',
      "not an access token (an ID or logout token?)"]),
]  # fmt: skip


def _refused_line(node: Node) -> dict[str, Any]:
    lines = node.logs.audit("auth.connect.refused")
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(("code", "error", "auth", "wanted"), CASES, ids=[c[0] for c in CASES])
async def test_refusal_audit_names_seen_and_expected(
    live: Node, code: str, error: type[SsoioError], auth: Callable[[Node], Any], wanted: list[str]
) -> None:
    refusal = await live.refusal(auth(live))
    # the client: the stable code and the short message, as before, nothing more
    assert refusal["data"]["code"] == code
    assert set(refusal["data"]) == {"code", "message"}
    if code not in ("token_missing", "token_malformed", "claims_invalid"):
        assert refusal["data"]["message"] == error.default_message
    line = _refused_line(live)
    assert line["code"] == code
    detail = json.dumps(line["detail"], sort_keys=True)
    assert "seen" in line["detail"]
    assert "expected" in line["detail"]
    for text in wanted:
        assert text in detail, detail
    await live.assert_healthy(fetches=1)  # no token or signature in any answer or log line


async def test_strict_typ_names_the_compatible_mode(rsa_key: SigningKey) -> None:
    raw = example_raw()
    raw["issuers"][0]["token_types"] = ["at+jwt"]
    async with running_node(settings_from(raw), key=rsa_key) as node:
        refusal = await node.refusal({"token": node.token(header={"typ": "JWT"})})
        assert refusal["data"] == {
            "code": "claims_invalid",
            "message": "this token type is not accepted as an access token",
        }
        detail = _refused_line(node)["detail"]
        assert detail == {
            "seen": {"typ": "JWT"},
            "expected": {"token_types": ["at+jwt"]},
            "hint": 'token_types = ["at+jwt", "JWT"] accepts it (compatible mode)',
        }
        node.assert_clean()


async def test_discovery_mismatch_names_both_issuers(
    rsa_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    """``serve`` against a provider whose issuer has a trailing slash the configuration
    lacks: the log names both values and the difference; a client gets idp_unavailable."""
    idp = FakeIdp(issuer=ISSUER, keys=[rsa_key], discovery_issuer=ISSUER + "/")
    async with running_node(key=rsa_key, idp=idp, sentinel=False) as node:
        refusal = await node.refusal({"token": node.token()})
        assert refusal["data"] == {
            "code": "idp_unavailable",
            "message": "the issuer's signing keys cannot be loaded",
        }
        detail = _refused_line(node)["detail"]
        assert detail["last_failure"]["seen"] == {"issuer": ISSUER + "/"}
        assert detail["last_failure"]["expected"] == {"issuer": ISSUER}
        # (logged during the start-up warm-up, before the node's own capture is installed)
        texts = [r.getMessage() for r in caplog.records if "discovery.failed" in r.getMessage()]
        assert texts, caplog.text
        assert f'"seen": {{"issuer": "{ISSUER}/"}}' in texts[0]
        assert f'"expected": {{"issuer": "{ISSUER}"}}' in texts[0]
        assert (
            "trailing slash: the provider's issuer has trailing slash; "
            f"set issuers.issuer = '{ISSUER}/', exactly"
        ) in texts[0]
        node.assert_clean(fetches=10)
