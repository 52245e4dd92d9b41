"""ssoio: a Socket.IO server for enterprise single sign-on."""

from ssoio.app import SsoServer
from ssoio.config import Settings
from ssoio.errors import SsoioError
from ssoio.oidc import KeyStore, TokenVerifier, VerifiedToken
from ssoio.policy.decision import Decision
from ssoio.policy.engine import Policy
from ssoio.policy.principal import Principal
from ssoio.settings import load_settings

__all__ = [
    "Decision",
    "KeyStore",
    "Policy",
    "Principal",
    "Settings",
    "SsoServer",
    "SsoioError",
    "TokenVerifier",
    "VerifiedToken",
    "load_settings",
]
