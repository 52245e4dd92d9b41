"""ssoio's configuration, loaded: config's loader with the checks of every package that
reads it (today the policy's requirement and room-pattern languages).

Config knows no policy (DESIGN.md: arrows point down); this module, above both, puts
them together. Use it, not ``ssoio.config.loading``, to load a configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssoio.config import loading
from ssoio.config.checks import Checks
from ssoio.config.model import Settings
from ssoio.policy.validation import POLICY_CHECKS

__all__ = ["CHECKS", "load_settings", "parse_settings", "validate_raw"]

CHECKS: Checks = POLICY_CHECKS


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read, interpolate and validate the TOML file at ``path``.

    :param env: environment for ``${NAME}`` references (defaults to ``os.environ``).
    :raises ConfigError: with every problem found, each with its key path.
    """
    return loading.load_settings(path, env, checks=CHECKS)


def parse_settings(text: str, env: Mapping[str, str]) -> Settings:
    """Validate TOML ``text``; see ``load_settings``."""
    return loading.parse_settings(text, env, checks=CHECKS)


def validate_raw(raw: dict[str, Any], env: Mapping[str, str]) -> Settings:
    """Validate an already parsed TOML document; see ``load_settings``."""
    return loading.validate_raw(raw, env, checks=CHECKS)
