"""OpenID Connect and OAuth 2.0: discovery, keys, access-token verification."""

from ssoio.oidc.discovery import Discovery, ProviderMetadata
from ssoio.oidc.introspection import Introspector
from ssoio.oidc.jwks import KeyStatus, KeyStore
from ssoio.oidc.tokens import TokenVerifier
from ssoio.oidc.verified import VerifiedToken, fingerprint

__all__ = [
    "Discovery",
    "Introspector",
    "KeyStatus",
    "KeyStore",
    "ProviderMetadata",
    "TokenVerifier",
    "VerifiedToken",
    "fingerprint",
]
