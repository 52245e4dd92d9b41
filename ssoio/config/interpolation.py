"""``${NAME}`` and ``${NAME:-default}`` environment interpolation over parsed TOML.

Only string values are interpolated, so a secret can live in the environment while the
file holds its key. ``$$`` stands for a literal ``$``. A reference to an unset variable
without a default is a problem reported at the value's key path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ssoio.errors import Problem

__all__ = ["interpolate", "key_path"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def key_path(parts: tuple[str | int, ...]) -> str:
    """Render ``("issuers", 0, "audiences")`` as ``issuers[0].audiences``; keys that are
    not bare TOML keys are quoted as TOML writes them: ``events."chat:send".requires``."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
        text += f".{key}" if text else key
    return text


def interpolate(
    value: Any, env: Mapping[str, str], path: tuple[str | int, ...] = ()
) -> tuple[Any, list[Problem]]:
    """Return ``value`` with every string interpolated, and the problems found."""
    problems: list[Problem] = []
    if isinstance(value, str):
        return _interpolate_string(value, env, path, problems), problems
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], found = interpolate(item, env, (*path, key))
            problems.extend(found)
        return out, problems
    if isinstance(value, list):
        items: list[Any] = []
        for index, item in enumerate(value):
            new, found = interpolate(item, env, (*path, index))
            items.append(new)
            problems.extend(found)
        return items, problems
    return value, problems


def _interpolate_string(
    text: str, env: Mapping[str, str], path: tuple[str | int, ...], problems: list[Problem]
) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        found = env.get(name)
        if found:
            return found
        if default is not None:
            return default
        if found is None:
            problems.append(Problem(key_path(path), f"environment variable {name} is not set"))
        return ""

    return _REFERENCE.sub(replace, text)
