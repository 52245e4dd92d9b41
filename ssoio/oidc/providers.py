"""The trusted identity providers of one configuration, wired together.

Owns the HTTP client used to reach them; everything else is shared through it:
discovery, the key store and the token verifier. ``keep_fresh`` runs for the life of a
node: it loads every issuer's keys without waiting for a client to need them (a load
balancer's readiness probe never brings a token), retries with a back-off while a
provider is down, and refreshes loaded keys every ``keys.jwks_ttl_s``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from types import TracebackType

import httpx

from ssoio.audit import Observer
from ssoio.clock import Clock, system_clock
from ssoio.config.model import Settings
from ssoio.oidc.backoff import refresh_delay
from ssoio.oidc.discovery import Discovery
from ssoio.oidc.introspection import Introspector
from ssoio.oidc.jwks import KeyStore
from ssoio.oidc.tokens import TokenVerifier

__all__ = ["IdentityProviders", "Sleeper"]

Sleeper = Callable[[float], Awaitable[None]]

log = logging.getLogger(__name__)
_jitter = secrets.SystemRandom().random


class IdentityProviders:
    """Discovery, keys and token verification for ``settings.issuers``.

    :param http: an HTTP client to use (tests pass one with a mock transport); by default
        one is created and closed with this object.
    :param sleep: how ``keep_fresh`` waits between fetches (tests pass one driven by their
        fake clock); settable until ``keep_fresh`` starts.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        http: httpx.AsyncClient | None = None,
        observe: Observer | None = None,
        sleep: Sleeper = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.sleep = sleep
        self._refreshers: dict[str, asyncio.Task[None]] | None = None
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
        self._reconcile()

    def _verifier(self, settings: Settings) -> TokenVerifier:
        introspecting = next((i for i in settings.issuers if i.introspection), None)
        introspector = (
            Introspector(self.http, introspecting, self._clock, settings.tokens.max_lifetime_s)
            if introspecting
            else None
        )
        return TokenVerifier(settings, self.keys, clock=self._clock, introspector=introspector)

    async def warm(self) -> None:
        """Load every issuer's keys now, so the first connections pay no fetch."""
        await asyncio.gather(*(self.keys.refresh(i) for i in self.settings.issuers))

    async def keep_fresh(self) -> None:
        """Keep every issuer's keys loaded and fresh, until cancelled (a node's lifespan).

        One task per issuer: fetch now; after a success sleep until the keys are due
        (``keys.jwks_ttl_s`` after the last fetch); after failures back off
        (``backoff.refresh_delay``: 1, 2, 4... s with jitter, capped at
        ``keys.refetch_cooldown_s``). Issuers added or removed by a reload are followed.
        """
        self._refreshers = {}
        try:
            self._reconcile()
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            tasks, self._refreshers = list(self._refreshers.values()), None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _reconcile(self) -> None:
        if self._refreshers is None:
            return
        names = {issuer.name for issuer in self.settings.issuers}
        for name in [n for n in self._refreshers if n not in names]:
            self._refreshers.pop(name).cancel()
        for name in names - set(self._refreshers):
            self._refreshers[name] = asyncio.create_task(
                self._refresh_loop(name), name=f"ssoio-keys-{name}"
            )

    async def _refresh_loop(self, name: str) -> None:
        failing = 0
        while (issuer := self.settings.issuer_named(name)) is not None:
            if self.keys.status(issuer).fresh:  # a connect's refetch got there first
                failing = 0
            else:
                failing = 0 if await self.keys.fetch_now(issuer) else failing + 1
            keys, age = issuer.keys, self.keys.status(issuer).age_s or 0.0
            delay = refresh_delay(
                keys.jwks_ttl_s - age, keys.refetch_cooldown_s, failing, _jitter()
            )
            if failing:
                log.debug("keys.retry issuer=%s failures=%d in_s=%.1f", name, failing, delay)
            await self.sleep(delay)

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
