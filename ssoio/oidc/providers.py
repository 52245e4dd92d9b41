"""The trusted identity providers of one configuration, wired together.

Owns the HTTP client used to reach them; everything else is shared through it:
discovery, the key store and the token verifier.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import httpx

from ssoio.audit import Observer
from ssoio.clock import Clock, system_clock
from ssoio.config.model import Settings
from ssoio.oidc.discovery import Discovery
from ssoio.oidc.introspection import Introspector
from ssoio.oidc.jwks import KeyStore
from ssoio.oidc.tokens import TokenVerifier

__all__ = ["IdentityProviders"]


class IdentityProviders:
    """Discovery, keys and token verification for ``settings.issuers``.

    :param http: an HTTP client to use (tests pass one with a mock transport); by default
        one is created and closed with this object.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        http: httpx.AsyncClient | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.settings = settings
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(headers={"User-Agent": "ssoio"})
        self.discovery = Discovery(self.http, clock)
        self.keys = KeyStore(self.http, self.discovery, clock, observe=observe)
        self._clock = clock
        self.verifier = self._verifier(settings)

    def apply(self, settings: Settings) -> None:
        """Use a reloaded configuration; keys and discovery caches are kept."""
        self.settings = settings
        self.verifier = self._verifier(settings)

    def _verifier(self, settings: Settings) -> TokenVerifier:
        introspecting = next((i for i in settings.issuers if i.introspection), None)
        introspector = (
            Introspector(self.http, introspecting, self._clock) if introspecting else None
        )
        return TokenVerifier(settings, self.keys, clock=self._clock, introspector=introspector)

    async def warm(self) -> None:
        """Load every issuer's keys now, so the first connections pay no fetch."""
        await asyncio.gather(*(self.keys.refresh(i) for i in self.settings.issuers))

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> IdentityProviders:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
