"""ssoio's own checks, pointed at the dev IdP: what a token must pass to be any use."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ssoio.clock import Clock
from ssoio.config import Settings
from ssoio.oidc.id_tokens import Expectations
from ssoio.oidc.providers import IdentityProviders
from ssoio.settings import validate_raw
from tests.devidp.browser import WEB_CLIENT
from tests.devidp.harness import Running, http_client

__all__ = ["OffsetClock", "expectations", "jwt_header", "jwt_payload", "providers_for"]


@dataclass
class OffsetClock:
    """Real time (the IdP's tokens carry real iat/exp) that a test can move ahead."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def settings_for(running: Running, **issuer: Any) -> Settings:
    table = {"name": "dev", "issuer": running.issuer, "audiences": ["ssoio-api"], **issuer}
    return validate_raw({"issuers": [table]}, {})


@asynccontextmanager
async def providers_for(
    running: Running, clock: Clock = time.time, **issuer: Any
) -> AsyncIterator[IdentityProviders]:
    """ssoio's discovery, key store and verifier for the dev IdP (strict RFC 9068)."""
    async with http_client() as http:
        yield IdentityProviders(settings_for(running, **issuer), clock=clock, http=http)


def expectations(running: Running, max_age_s: float = float("inf")) -> Expectations:
    return Expectations(running.issuer, WEB_CLIENT, leeway_s=30, max_age_s=max_age_s)


def _part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def jwt_header(token: str) -> dict[str, Any]:
    """Decoded, not verified: for asserting what the IdP wrote."""
    return _part(token, 0)


def jwt_payload(token: str) -> dict[str, Any]:
    return _part(token, 1)
