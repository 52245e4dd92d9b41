"""Operator hints for a value that almost matches: what differs between the issuer a token
or discovery document names and the one configured (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from ssoio.errors import DETAIL_MAX

__all__ = ["clip", "issuer_difference", "nearest_issuer"]


def clip(value: Any) -> Any:
    """``value`` for an operator detail: strings (and strings in lists) clipped to
    ``DETAIL_MAX`` characters, so no whole token is ever echoed; other types by name."""
    if isinstance(value, str):
        return value if len(value) <= DETAIL_MAX else value[:DETAIL_MAX] + "..."
    if isinstance(value, list | tuple):
        return [clip(v) for v in list(value)[:16]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return f"<{type(value).__name__}>"


def issuer_difference(seen: str, configured: str) -> str | None:
    """What alone tells ``seen`` from ``configured``: trailing slash, scheme, host, case;
    ``None`` when they differ in more than that (another issuer altogether).

    Issuers compare as exact strings (OIDC Discovery 1.0 §4.3, RFC 9068 §4), so any of
    these differences refuses every token: configure the value the provider writes.
    """
    if seen == configured:
        return None
    if seen.rstrip("/") == configured.rstrip("/"):
        slash = "has" if seen.endswith("/") else "has no"
        return f"trailing slash: the provider's issuer {slash} trailing slash"
    a, b = urlsplit(seen), urlsplit(configured)
    if (a.netloc, a.path) == (b.netloc, b.path) and a.scheme != b.scheme:
        return f"scheme: the provider says {a.scheme}, the configuration {b.scheme}"
    if seen.lower() == configured.lower():
        return "case: the two differ only in upper/lower case"
    if a.path.rstrip("/") == b.path.rstrip("/") and a.scheme == b.scheme:
        return f"host: the provider says {a.netloc}, the configuration {b.netloc}"
    return None


def nearest_issuer(seen: str, configured: Iterable[str]) -> tuple[str, str] | None:
    """The configured issuer that ``seen`` almost is, and how they differ."""
    for candidate in configured:
        difference = issuer_difference(seen, candidate)
        if difference is not None:
            return candidate, difference
    return None
