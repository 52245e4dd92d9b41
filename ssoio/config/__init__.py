"""Configuration: TOML with ``${ENV}`` interpolation, loaded into a frozen model."""

from ssoio.config.loading import load_settings, parse_settings
from ssoio.config.model import (
    IntrospectionSettings,
    IssuerSettings,
    KeyCacheSettings,
    Settings,
    TokenSettings,
)

__all__ = [
    "IntrospectionSettings",
    "IssuerSettings",
    "KeyCacheSettings",
    "Settings",
    "TokenSettings",
    "load_settings",
    "parse_settings",
]
