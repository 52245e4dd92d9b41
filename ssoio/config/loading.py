"""Loading: TOML text -> interpolation -> typed model -> cross-field checks.

Every problem found on the way is collected and raised once as ``ConfigError``. The
caller passes the checks of the languages config does not know (``checks.Checks``; the
whole of ssoio loads through ``ssoio.settings``, which passes the policy's).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ssoio.config.checks import Checks
from ssoio.config.interpolation import interpolate, key_path
from ssoio.config.model import Settings
from ssoio.config.validation import semantic_problems
from ssoio.errors import ConfigError, Problem

__all__ = ["load_settings", "parse_settings", "validate_raw"]

_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def load_settings(
    path: str | Path, env: Mapping[str, str] | None = None, *, checks: Checks
) -> Settings:
    """Read, interpolate and validate the TOML file at ``path``.

    :param env: environment for ``${NAME}`` references (defaults to ``os.environ``).
    :param checks: the checks config itself does not know (the policy's).
    :raises ConfigError: with every problem found.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read {path}: {exc.strerror}")]) from exc
    return parse_settings(text, os.environ if env is None else env, checks=checks)


def parse_settings(text: str, env: Mapping[str, str], *, checks: Checks) -> Settings:
    """Validate TOML ``text``; see ``load_settings``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem("", f"TOML syntax error: {exc}")]) from exc
    return validate_raw(raw, env, checks=checks)


def validate_raw(raw: dict[str, Any], env: Mapping[str, str], *, checks: Checks) -> Settings:
    """Validate an already parsed TOML document."""
    data, problems = interpolate(raw, env)
    try:
        settings = Settings.model_validate(data, context=checks.context())
    except ValidationError as exc:
        raise ConfigError([*problems, *map(_problem, _root_causes(exc.errors()))]) from None
    problems.extend(semantic_problems(settings, checks.problems))
    if problems:
        raise ConfigError(problems)
    return settings


def _root_causes(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    # A list whose items all failed is also reported "too short": that is a consequence,
    # not a mistake of its own, so it is dropped when an error inside it explains it.
    def explained(error: ErrorDetails) -> bool:
        loc = error["loc"]
        return error["type"] == "too_short" and any(
            other["loc"][: len(loc)] == loc and len(other["loc"]) > len(loc) for other in errors
        )

    return [error for error in errors if not explained(error)]


def _problem(error: ErrorDetails) -> Problem:
    # pydantic adds the union member or validator name to a location; keep real keys only.
    parts = tuple(p for p in error["loc"] if isinstance(p, int) or not p.startswith("function-"))
    message = _MESSAGES.get(error["type"], error["msg"])
    return Problem(key_path(parts), message.removeprefix("Value error, "))
