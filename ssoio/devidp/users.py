"""The development provider's users, and the claims it writes about them.

Claims are Keycloak-shaped (``realm_access.roles``, ``groups`` as ``/paths``, a custom
``tenant``), because the reference scenario and ssoio's ``keycloak`` preset speak that
dialect.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ssoio.config.base import Section

__all__ = ["DevUser", "filter_scope"]

Word = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


def filter_scope(requested: str | None, allowed: tuple[str, ...]) -> str:
    """The requested scopes that are in ``allowed``, once each, in the order asked.

    RFC 6749 §3.3: the server may grant fewer scopes than requested, and says which in
    the token response's ``scope``.
    """
    asked = dict.fromkeys((requested or "").split())
    return " ".join(scope for scope in asked if scope in allowed)


class DevUser(Section):
    """One user of ``config/dev-users.toml``; ``username`` is also the ``sub``."""

    username: Word
    name: Annotated[str, Field(min_length=1, max_length=128)]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
    tenant: Word
    roles: tuple[Word, ...] = ()
    groups: tuple[Annotated[str, Field(pattern=r"^/[^\s]{1,128}$")], ...] = ()
    scopes: tuple[Word, ...] = Field(min_length=1)

    def get_user_id(self) -> str:
        """authlib's user protocol."""
        return self.username

    def entitled(self, scope: str | None) -> str:
        """The part of ``scope`` this user may have (dave has no ``chat``)."""
        return filter_scope(scope, self.scopes)

    def identity_claims(self) -> dict[str, Any]:
        """Claims for access tokens, as Keycloak writes them."""
        return {
            "preferred_username": self.username,
            "name": self.name,
            "email": self.email,
            "email_verified": True,
            "realm_access": {"roles": list(self.roles)},
            "groups": list(self.groups),
            "tenant": self.tenant,
        }

    def standard_claims(self, scope: str) -> dict[str, Any]:
        """OIDC Core §5.4: the standard claims that ``profile`` and ``email`` release."""
        granted = set(scope.split())
        claims: dict[str, Any] = {}
        if "profile" in granted:
            claims.update(name=self.name, preferred_username=self.username)
        if "email" in granted:
            claims.update(email=self.email, email_verified=True)
        return claims
