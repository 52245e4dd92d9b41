"""Loading ``config/dev-users.toml``: the development provider's users and clients.

``{public_url}`` anywhere in the file is replaced by ssoio's public URL, so one file
serves every port the demo runs on. Every problem is reported at once, by key path.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ssoio.config.base import Section
from ssoio.devidp.clients import DevClient
from ssoio.devidp.users import DevUser
from ssoio.errors import ConfigError, Problem

__all__ = ["Directory", "load_directory", "parse_directory"]


class _File(Section):
    users: tuple[DevUser, ...]
    clients: tuple[DevClient, ...]


@dataclass(frozen=True, slots=True)
class Directory:
    """Users by username and clients by client id."""

    users: Mapping[str, DevUser]
    clients: Mapping[str, DevClient]

    @property
    def scopes(self) -> tuple[str, ...]:
        """Every scope some user or client may have (``scopes_supported``)."""
        every = [s for u in self.users.values() for s in u.scopes]
        every += [s for c in self.clients.values() for s in c.scopes]
        return tuple(dict.fromkeys(every))


def load_directory(path: str | Path, public_url: str) -> Directory:
    """Read and check the users file at ``path``.

    :raises ConfigError: with every problem found.
    """
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read {path}: {exc.strerror}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem("", f"{path}: TOML syntax error: {exc}")]) from exc
    return parse_directory(raw, public_url)


def parse_directory(raw: dict[str, Any], public_url: str) -> Directory:
    """Check an already parsed users file; see ``load_directory``."""
    try:
        parsed = _File.model_validate(_substitute(raw, public_url.rstrip("/")))
    except ValidationError as exc:
        problems = [Problem(_key_path(e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(problems) from None
    problems = [*_duplicates(parsed), *_client_problems(parsed.clients)]
    if problems:
        raise ConfigError(problems)
    return Directory(
        users={u.username: u for u in parsed.users},
        clients={c.client_id: c for c in parsed.clients},
    )


def _substitute(value: Any, public_url: str) -> Any:
    if isinstance(value, str):
        return value.replace("{public_url}", public_url)
    if isinstance(value, list):
        return [_substitute(v, public_url) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, public_url) for k, v in value.items()}
    return value


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
    return path


def _duplicates(parsed: _File) -> list[Problem]:
    problems = []
    for table, names in (
        ("users", [u.username for u in parsed.users]),
        ("clients", [c.client_id for c in parsed.clients]),
    ):
        for index, name in enumerate(names):
            if name in names[:index]:
                problems.append(Problem(f"{table}[{index}]", f"{name!r} is listed twice"))
    return problems


def _client_problems(clients: tuple[DevClient, ...]) -> list[Problem]:
    problems = []
    for index, client in enumerate(clients):
        where = f"clients[{index}]"
        if client.public and "client_credentials" in client.grant_types:
            # RFC 6749 §4.4: the client credentials grant is for confidential clients only.
            problems.append(Problem(f"{where}.grant_types", "client_credentials needs a secret"))
        if "authorization_code" in client.grant_types and not client.redirect_uris:
            problems.append(Problem(f"{where}.redirect_uris", "authorization_code needs one"))
    return problems
