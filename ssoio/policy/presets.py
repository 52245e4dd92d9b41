"""Claim-mapping presets for common providers; documented in ``config/presets/``.

Each preset gives every path ``ClaimMapping`` needs; an issuer's ``[issuers.claims]``
overrides any of them. A test checks each preset against the sample token of its
``config/presets/<name>.toml``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

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
    },
}
