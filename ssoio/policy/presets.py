"""Claim-mapping presets for common providers; documented in ``config/presets/``.

Each preset gives every path ``ClaimMapping`` needs; an issuer's ``[issuers.claims]``
overrides any of them. A test checks each preset against the sample token of its
``config/presets/<name>.toml``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "preset_named"]

PRESETS: dict[str, dict[str, Any]] = {
    # Keycloak: realm roles under realm_access, group paths via the "groups" mapper,
    # azp names the client.
    "keycloak": {
        "subject": "sub",
        "username": "preferred_username",
        "email": "email",
        "name": "name",
        "session_id": "sid",
        "client_id": "azp",
        "roles": ("realm_access.roles",),
        "groups": ("groups",),
        "scopes": ("scope",),
        "attributes": {},
        "split": {},
    },
    # Microsoft Entra ID (v2 tokens): sub is pairwise per application, oid is the user's
    # id across the tenant, so oid is the subject; tid is the tenant; scp holds scopes.
    "entra": {
        "subject": "oid",
        "username": "preferred_username",
        "email": "email",
        "name": "name",
        "session_id": "sid",
        "client_id": "azp",
        "roles": ("roles",),
        "groups": ("groups",),
        "scopes": ("scp",),
        "attributes": {"tenant": "tid"},
        "split": {},
    },
    # Okta (custom authorization server): sub is the login, scp an array, cid the client,
    # groups from a "groups" claim added to the access token.
    "okta": {
        "subject": "sub",
        "username": "sub",
        "email": "email",
        "name": "name",
        "session_id": "sid",
        "client_id": "cid",
        "roles": (),
        "groups": ("groups",),
        "scopes": ("scp",),
        "attributes": {},
        "split": {},
    },
    # Auth0: RBAC permissions are scopes; roles and other custom claims must be
    # namespaced (https://example.com/roles), so the operator names them.
    "auth0": {
        "subject": "sub",
        "username": None,
        "email": None,
        "name": None,
        "session_id": "sid",
        "client_id": "azp",
        "roles": (),
        "groups": (),
        "scopes": ("scope", "permissions"),
        "attributes": {},
        "split": {},
    },
    # LemonLDAP::NG 2.x: claims are the relying party's exported attributes; JWT access
    # tokens carry client_id (no azp) and no sid. It has no roles of its own: groups (and
    # any "roles" macro) are released as one "; "-separated string unless the claim type
    # is an array, so both are split on ";" (an array splits into the same items).
    "lemonldap": {
        "subject": "sub",
        "username": "preferred_username",
        "email": "email",
        "name": "name",
        "session_id": "sid",
        "client_id": "client_id",
        "roles": ("roles",),
        "groups": ("groups",),
        "scopes": ("scope",),
        "attributes": {},
        "split": {"roles": ";", "groups": ";"},
    },
    # Any OpenID Connect provider: standard claim names, RFC 9068 client_id.
    "generic": {
        "subject": "sub",
        "username": "preferred_username",
        "email": "email",
        "name": "name",
        "session_id": "sid",
        "client_id": "client_id",
        "roles": ("roles",),
        "groups": ("groups",),
        "scopes": ("scope", "scp"),
        "attributes": {},
        "split": {},
    },
}


def preset_named(name: str) -> dict[str, Any]:
    """The preset ``name``; ``auto`` is ``generic`` until the provider's metadata has chosen
    one (``ssoio.oidc.families``)."""
    return PRESETS["generic" if name == "auto" else name]
