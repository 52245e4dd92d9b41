"""Discovery documents: parsed strictly, fetched with bounds."""

from __future__ import annotations

from typing import Any

import pytest

from ssoio.errors import IdpUnavailable
from ssoio.oidc.discovery import discovery_url, parse_metadata

ISSUER = "https://idp.test/realms/acme"


@pytest.mark.parametrize(
    ("issuer", "url"),
    [
        (ISSUER, f"{ISSUER}/.well-known/openid-configuration"),
        (ISSUER + "/", f"{ISSUER}/.well-known/openid-configuration"),
        ("https://idp.test", "https://idp.test/.well-known/openid-configuration"),
    ],
)
def test_discovery_url(issuer: str, url: str) -> None:
    assert discovery_url(issuer) == url


def test_parse_metadata() -> None:
    document: dict[str, Any] = {
        "issuer": ISSUER,
        "jwks_uri": f"{ISSUER}/certs",
        "end_session_endpoint": f"{ISSUER}/logout",
        "token_endpoint": "javascript:alert(1)",
        "id_token_signing_alg_values_supported": ["RS256", "PS256"],
    }
    metadata = parse_metadata(document, ISSUER)
    assert metadata.jwks_uri == f"{ISSUER}/certs"
    assert metadata.end_session_endpoint == f"{ISSUER}/logout"
    assert metadata.token_endpoint is None
    assert metadata.signing_algorithms == ("RS256", "PS256")


@pytest.mark.parametrize(
    "document",
    [
        {"issuer": ISSUER + "/", "jwks_uri": "https://idp.test/certs"},
        {"issuer": "https://evil.test", "jwks_uri": "https://idp.test/certs"},
        {"jwks_uri": "https://idp.test/certs"},
        {"issuer": ISSUER},
        {"issuer": ISSUER, "jwks_uri": "file:///etc/passwd"},
        {"issuer": ISSUER, "jwks_uri": ["https://idp.test/certs"]},
    ],
)
def test_refused_metadata(document: dict[str, Any]) -> None:
    with pytest.raises(IdpUnavailable):
        parse_metadata(document, ISSUER)
