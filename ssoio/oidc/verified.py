"""What a successful verification proves, whichever way the token was checked."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ssoio.config.model import IssuerSettings

__all__ = ["VerifiedToken", "fingerprint"]


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token that passed every check. Holds its claims, never the token itself.

    ``expires_at`` is the token's ``exp``; the issuer's ``leeway_s`` applies on top.
    """

    issuer: IssuerSettings
    claims: Mapping[str, Any]
    expires_at: float
    fingerprint: bytes


def fingerprint(token: str) -> bytes:
    """The SHA-256 of a token: safe to keep and compare, used as a cache key."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
