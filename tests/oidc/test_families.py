"""``guess_family``: which product a discovery document comes from (for ``preset = "auto"``
and ``ssoio doctor``). The documents are trimmed from what each product publishes."""

from __future__ import annotations

from typing import Any

import pytest

from ssoio.oidc.families import guess_family


def keycloak() -> dict[str, Any]:
    base = "https://sso.acme.example/realms/acme"
    return {
        "issuer": base,
        "jwks_uri": f"{base}/protocol/openid-connect/certs",
        "token_endpoint": f"{base}/protocol/openid-connect/token",
        "check_session_iframe": f"{base}/protocol/openid-connect/login-status-iframe.html",
    }


def entra() -> dict[str, Any]:
    tenant = "4f8e2a61-3c7d-4b9e-a215-6d0c8f3e7b19"
    base = f"https://login.microsoftonline.com/{tenant}"
    return {
        "issuer": f"{base}/v2.0",
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "cloud_instance_name": "microsoftonline.com",
        "msgraph_host": "graph.microsoft.com",
        "tenant_region_scope": "EU",
    }


def okta(host: str = "acme.okta.com") -> dict[str, Any]:
    base = f"https://{host}/oauth2/default"
    return {"issuer": base, "jwks_uri": f"{base}/v1/keys", "token_endpoint": f"{base}/v1/token"}


def auth0(host: str = "acme.eu.auth0.com") -> dict[str, Any]:
    base = f"https://{host}/"
    return {
        "issuer": base,
        "jwks_uri": f"{base}.well-known/jwks.json",
        "token_endpoint": f"{base}oauth/token",
        "mfa_challenge_endpoint": f"{base}mfa/challenge",
        "device_authorization_endpoint": f"{base}oauth/device/code",
    }


def lemonldap(with_iframe: bool = True) -> dict[str, Any]:
    base = "https://auth.acme.example/"
    document = {
        "issuer": base,
        "jwks_uri": f"{base}oauth2/jwks",
        "token_endpoint": f"{base}oauth2/token",
        "end_session_endpoint": f"{base}oauth2/logout",
        "backchannel_logout_supported": False,
        "frontchannel_logout_supported": True,
    }
    if with_iframe:
        document["check_session_iframe"] = f"{base}oauth2/checksession.html"
    return document


def node_oidc_provider() -> dict[str, Any]:
    base = "http://127.0.0.1:4000"
    return {
        "issuer": base,
        "jwks_uri": f"{base}/jwks",
        "token_endpoint": f"{base}/token",
        "end_session_endpoint": f"{base}/session/end",
    }


@pytest.mark.parametrize(
    ("document", "preset", "evidence"),
    [
        pytest.param(keycloak(), "keycloak", "protocol/openid-connect/token", id="keycloak"),
        pytest.param(entra(), "entra", "login.microsoftonline.com", id="entra"),
        pytest.param(
            {**entra(), "issuer": "https://sso.acme.example/t/v2.0"},
            "entra",
            "cloud_instance_name",
            id="entra-members",
        ),
        pytest.param(okta(), "okta", "acme.okta.com", id="okta"),
        pytest.param(okta("login.acme.example"), "okta", "/v1/token", id="okta-custom-domain"),
        pytest.param(auth0(), "auth0", "auth0.com", id="auth0"),
        pytest.param(
            auth0("login.acme.example"), "auth0", "mfa_challenge_endpoint", id="auth0-custom-domain"
        ),
        pytest.param(lemonldap(), "lemonldap", "checksession.html", id="lemonldap"),
        pytest.param(
            lemonldap(with_iframe=False), "lemonldap", "oauth2/jwks", id="lemonldap-endpoints"
        ),
        pytest.param(node_oidc_provider(), "generic", "no rule matched", id="oidc-provider"),
        pytest.param({}, "generic", "no rule matched", id="empty"),
        pytest.param(
            {"issuer": 5, "token_endpoint": ["x"]}, "generic", "no rule matched", id="junk-types"
        ),
    ],
)
def test_family_from_metadata(document: dict[str, Any], preset: str, evidence: str) -> None:
    family = guess_family(document)
    assert family.preset == preset
    assert evidence in family.evidence


def test_keycloak_paths_elsewhere_are_not_keycloak() -> None:
    """The /protocol/openid-connect/ path alone, without a /realms/NAME issuer, is not it."""
    document = {**keycloak(), "issuer": "https://sso.acme.example/acme"}
    assert guess_family(document).preset == "generic"
