"""ssoio: a Socket.IO server for enterprise single sign-on."""

from ssoio.config import Settings, load_settings
from ssoio.errors import SsoioError
from ssoio.oidc import KeyStore, TokenVerifier, VerifiedToken

__all__ = [
    "KeyStore",
    "Settings",
    "SsoioError",
    "TokenVerifier",
    "VerifiedToken",
    "load_settings",
]
