"""The development provider's registered clients (authlib's ``ClientMixin`` protocol).

A client with a ``secret`` is confidential and authenticates at the token endpoint with
``client_secret_basic`` or ``client_secret_post``; one without is public (``none``) and is
held to PKCE. Every authorization-code client must use PKCE with S256 (RFC 9700 §2.1.1).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr

from ssoio.config.base import Section
from ssoio.devidp.users import filter_scope

__all__ = ["DevClient", "GrantType"]

GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]
Url = Annotated[str, Field(pattern=r"^https?://[^\s]+$")]
_SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


class DevClient(Section):
    """One ``[[clients]]`` entry of ``config/dev-users.toml``."""

    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    name: str = ""
    secret: SecretStr = SecretStr("")
    grant_types: tuple[GrantType, ...] = Field(min_length=1)
    scopes: tuple[str, ...] = ()
    redirect_uris: tuple[Url, ...] = ()
    post_logout_redirect_uris: tuple[Url, ...] = ()
    backchannel_logout_uri: Url | None = None
    # Claims of this client's client-credentials tokens (the tenant a backend acts for:
    # ssoio's API disconnects reach only connections that share api.disconnect's
    # same_attributes with the caller)
    claims: dict[str, str] = Field(default_factory=dict)

    @property
    def public(self) -> bool:
        return not self.secret.get_secret_value()

    @property
    def client_metadata(self) -> dict[str, Any]:
        """The RFC 7591 view authlib's end-session endpoint reads."""
        return {"post_logout_redirect_uris": list(self.post_logout_redirect_uris)}

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        # OIDC Core §3.1.2.1: redirect_uri is REQUIRED, so there is no default.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        return filter_scope(scope, self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match (RFC 9700 §4.1.3)

    def check_client_secret(self, client_secret: str) -> bool:
        secret = self.secret.get_secret_value()
        return bool(secret) and secrets.compare_digest(secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none" if self.public else method in _SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.check_grant_type("authorization_code")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types
