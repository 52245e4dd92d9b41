"""Which product a provider is, guessed from its discovery metadata (pure).

Used by ``preset = "auto"`` (the claim-mapping preset follows the guess) and by
``ssoio doctor`` (the guess against the configured preset). The rules, first match wins;
each rests on something the product publishes by default and others do not:

* **entra** - Microsoft Entra ID: the issuer's host is ``login.microsoftonline.com``,
  ``sts.windows.net`` or ``*.ciamlogin.com``, or the document carries Microsoft's own members
  ``cloud_instance_name`` / ``msgraph_host`` / ``tenant_region_scope``.
* **keycloak** - the issuer's path is ``.../realms/NAME`` and the endpoints live under
  ``.../protocol/openid-connect/`` (token endpoint ``.../protocol/openid-connect/token``).
* **okta** - the issuer's host is ``*.okta.com``, ``*.oktapreview.com`` or ``*.okta-emea.com``,
  or the token endpoint is Okta's ``/oauth2/v1/token`` or ``/oauth2/SERVER/v1/token``
  (custom domains keep those paths).
* **auth0** - the issuer's host is ``*.auth0.com``, or the document has Auth0's
  ``mfa_challenge_endpoint`` next to a token endpoint ``/oauth/token``.
* **lemonldap** - LemonLDAP::NG's endpoints, by default ``PORTAL/oauth2/token`` and
  ``PORTAL/oauth2/jwks`` right under the issuer, or its check-session page
  ``.../oauth2/checksession.html``.
* **generic** - anything else (npm ``oidc-provider``, Authentik, Dex, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Family", "guess_family"]


@dataclass(frozen=True, slots=True)
class Family:
    """A guess: the preset named after the product, and the metadata that gave it away."""

    preset: str
    product: str
    evidence: str


_GENERIC = Family(
    "generic", "an OpenID Connect provider ssoio has no preset for", "no rule matched"
)


def guess_family(metadata: Mapping[str, Any]) -> Family:
    """The provider family that ``metadata`` (a discovery document) shows."""
    for rule in (_entra, _keycloak, _okta, _auth0, _lemonldap):
        family = rule(metadata)
        if family is not None:
            return family
    return _GENERIC


def _text(metadata: Mapping[str, Any], name: str) -> str:
    value = metadata.get(name)
    return value if isinstance(value, str) else ""


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _path(url: str) -> str:
    return urlsplit(url).path


def _entra(metadata: Mapping[str, Any]) -> Family | None:
    host = _host(_text(metadata, "issuer"))
    if host in ("login.microsoftonline.com", "sts.windows.net") or host.endswith(".ciamlogin.com"):
        return Family("entra", "Microsoft Entra ID", f"issuer host {host}")
    for member in ("cloud_instance_name", "msgraph_host", "tenant_region_scope"):
        if member in metadata:
            return Family("entra", "Microsoft Entra ID", f"member {member}")
    return None


def _keycloak(metadata: Mapping[str, Any]) -> Family | None:
    issuer_path = _path(_text(metadata, "issuer")).rstrip("/")
    token_path = _path(_text(metadata, "token_endpoint"))
    parent, _, _realm = issuer_path.rpartition("/")
    if parent.endswith("/realms") and token_path == f"{issuer_path}/protocol/openid-connect/token":
        return Family("keycloak", "Keycloak", "token endpoint .../protocol/openid-connect/token")
    return None


def _okta(metadata: Mapping[str, Any]) -> Family | None:
    host = _host(_text(metadata, "issuer"))
    if host.endswith((".okta.com", ".oktapreview.com", ".okta-emea.com")):
        return Family("okta", "Okta", f"issuer host {host}")
    parts = _path(_text(metadata, "token_endpoint")).strip("/").split("/")
    if parts[:1] == ["oauth2"] and parts[-2:] == ["v1", "token"] and len(parts) in (3, 4):
        return Family("okta", "Okta", "token endpoint /oauth2/.../v1/token")
    return None


def _auth0(metadata: Mapping[str, Any]) -> Family | None:
    host = _host(_text(metadata, "issuer"))
    if host.endswith(".auth0.com"):
        return Family("auth0", "Auth0", f"issuer host {host}")
    if "mfa_challenge_endpoint" in metadata and _path(_text(metadata, "token_endpoint")).endswith(
        "/oauth/token"
    ):
        return Family("auth0", "Auth0", "member mfa_challenge_endpoint")
    return None


def _lemonldap(metadata: Mapping[str, Any]) -> Family | None:
    root = _text(metadata, "issuer").rstrip("/")
    if _text(metadata, "check_session_iframe").endswith("/oauth2/checksession.html"):
        return Family(
            "lemonldap", "LemonLDAP::NG", "check_session_iframe .../oauth2/checksession.html"
        )
    if root and (_text(metadata, "token_endpoint"), _text(metadata, "jwks_uri")) == (
        f"{root}/oauth2/token",
        f"{root}/oauth2/jwks",
    ):
        return Family(
            "lemonldap", "LemonLDAP::NG", "endpoints ISSUER/oauth2/token and /oauth2/jwks"
        )
    return None
