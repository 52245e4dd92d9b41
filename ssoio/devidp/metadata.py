"""The development provider's discovery document (OpenID Connect Discovery 1.0 §3,
RFC 8414 §2), built from its issuer URL."""

from __future__ import annotations

from typing import Any

__all__ = ["provider_metadata"]

_TOKEN_CLAIMS = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "azp", "at_hash")
_PROFILE_CLAIMS = ("name", "preferred_username", "email", "email_verified")
_KEYCLOAK_CLAIMS = ("realm_access", "groups", "tenant")  # access tokens only


def provider_metadata(issuer: str, scopes: tuple[str, ...]) -> dict[str, Any]:
    """Every endpoint lives under the issuer, as the routes of ``app.py`` do."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "end_session_endpoint": f"{issuer}/end_session",
        "scopes_supported": list(scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [*_TOKEN_CLAIMS, *_PROFILE_CLAIMS, *_KEYCLOAK_CLAIMS],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": False,
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
    }
