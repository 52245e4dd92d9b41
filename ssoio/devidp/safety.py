"""Where the development provider may run: loopback URLs, development mode, nowhere else.

It signs anyone in as anyone without a password, so reaching it from another machine,
or mistaking it for a real provider in production, must be impossible rather than
discouraged.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ssoio.errors import ConfigError, Problem

__all__ = ["LOOPBACK_HOSTS", "check_safe"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_safe(public_url: str, mode: str) -> None:
    """Refuse production mode and a public URL whose host is not loopback.

    :raises ConfigError: naming each offending key.
    """
    problems = []
    if mode != "development":
        problems.append(
            Problem("mode", f"the development IdP only runs in development mode, not {mode!r}")
        )
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        problems.append(
            Problem(
                "server.public_url",
                "the development IdP only serves a loopback http(s) URL "
                f"(host 127.0.0.1, localhost or ::1), not {public_url!r}",
            )
        )
    if problems:
        raise ConfigError(problems)
