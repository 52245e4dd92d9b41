"""OpenID Provider discovery (OpenID Connect Discovery 1.0, RFC 8414).

Parsing a metadata document (pure, ``parse_metadata``) is kept apart from fetching
and caching it (``Discovery``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ssoio.clock import Clock
from ssoio.config.model import IssuerSettings
from ssoio.errors import IdpUnavailable
from ssoio.oidc.backoff import retry_delay
from ssoio.oidc.http import fetch_json
from ssoio.oidc.mismatch import clip, issuer_difference

__all__ = ["Discovery", "ProviderMetadata", "discovery_url", "issuer_mismatch", "parse_metadata"]

_MAX_DISCOVERY_BYTES = 256 * 1024

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of a provider's metadata that ssoio uses."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    introspection_endpoint: str | None = None
    signing_algorithms: tuple[str, ...] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def discovery_url(issuer: str) -> str:
    """OIDC Discovery §4: append the well-known path to the issuer, minus a trailing slash."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_metadata(document: dict[str, Any], expected_issuer: str) -> ProviderMetadata:
    """Check and extract a discovery document.

    :raises IdpUnavailable: when the document's ``issuer`` differs from the configured one
        (Discovery §4.3: "MUST be identical", to stop one provider impersonating another)
        or required members are missing.
    """
    if document.get("issuer") != expected_issuer:
        raise IdpUnavailable(
            "the provider's discovery document names another issuer",
            detail=issuer_mismatch(document.get("issuer"), expected_issuer),
        )
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise IdpUnavailable("the provider's discovery document has no usable jwks_uri")
    return ProviderMetadata(
        issuer=expected_issuer,
        jwks_uri=jwks_uri,
        authorization_endpoint=_url(document, "authorization_endpoint"),
        token_endpoint=_url(document, "token_endpoint"),
        userinfo_endpoint=_url(document, "userinfo_endpoint"),
        end_session_endpoint=_url(document, "end_session_endpoint"),
        introspection_endpoint=_url(document, "introspection_endpoint"),
        signing_algorithms=_strings(document.get("id_token_signing_alg_values_supported")),
        raw=document,
    )


def issuer_mismatch(seen: object, configured: str) -> dict[str, Any]:
    """Operator detail of a discovery document naming another issuer: both values and, when
    that is all that differs, the trailing slash, scheme, host or case."""
    detail: dict[str, Any] = {"seen": {"issuer": clip(seen)}, "expected": {"issuer": configured}}
    difference = issuer_difference(seen, configured) if isinstance(seen, str) else None
    if difference is not None:
        detail["hint"] = f"{difference}; set issuers.issuer = {clip(seen)!r}, exactly"
    return detail


def _url(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


@dataclass(slots=True)
class _Entry:
    metadata: ProviderMetadata | None = None
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")
    failing: int = 0
    inflight: asyncio.Task[ProviderMetadata] | None = None
    failure: dict[str, Any] = field(default_factory=dict)  # operator detail of the last one


class Discovery:
    """Fetches and caches each issuer's metadata; one fetch at a time per issuer.

    A cached document is served while fresh (``keys.discovery_ttl_s``); past that it is
    refetched, and while the provider is unreachable the old one keeps serving for up to
    ``keys.stale_limit_s``. Failed fetches are retried at most once per
    ``keys.refetch_cooldown_s``.
    """

    def __init__(self, http: httpx.AsyncClient, clock: Clock) -> None:
        self._http = http
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # told of every document fetched and accepted (``preset = "auto"`` listens)
        self.on_metadata: Callable[[IssuerSettings, ProviderMetadata], None] | None = None

    def cached(self, issuer: IssuerSettings) -> ProviderMetadata | None:
        """The last document fetched for ``issuer``, if any (no I/O)."""
        entry = self._entries.get(issuer.issuer)
        return entry.metadata if entry is not None else None

    async def get(self, issuer: IssuerSettings, *, force: bool = False) -> ProviderMetadata:
        """The issuer's metadata, fetching it when missing or out of date.

        :param force: fetch even within the retry back-off (the background key refresher,
            which keeps its own back-off, uses it); a fresh document is still reused.
        :raises IdpUnavailable: when there is no usable document.
        """
        entry = self._entries.setdefault(issuer.issuer, _Entry())
        now = self._clock()
        if entry.metadata and now - entry.fetched_at < issuer.keys.discovery_ttl_s:
            return entry.metadata
        wait = 0.0 if force else retry_delay(issuer.keys.refetch_cooldown_s, entry.failing)
        if entry.inflight is None and now - entry.attempted_at >= wait:
            entry.attempted_at = now
            entry.inflight = asyncio.create_task(self._fetch(issuer, entry))
        if entry.inflight is not None:
            try:
                return await asyncio.shield(entry.inflight)
            except IdpUnavailable:
                pass
        if entry.metadata and now - entry.fetched_at < issuer.keys.stale_limit_s:
            return entry.metadata
        raise IdpUnavailable(detail=entry.failure)

    async def _fetch(self, issuer: IssuerSettings, entry: _Entry) -> ProviderMetadata:
        try:
            document = await fetch_json(
                self._http,
                discovery_url(issuer.issuer),
                max_bytes=_MAX_DISCOVERY_BYTES,
                timeout_s=issuer.keys.http_timeout_s,
            )
            entry.metadata = parse_metadata(document, issuer.issuer)
            entry.fetched_at = self._clock()
            entry.failing = 0
            if self.on_metadata is not None:
                self.on_metadata(issuer, entry.metadata)
            return entry.metadata
        except IdpUnavailable as exc:
            entry.failing += 1
            entry.failure = {**exc.detail, "reason": exc.message}
            log.warning("discovery.failed issuer=%s reason=%s detail=%s", issuer.name,
                        exc.message, json.dumps(exc.detail, sort_keys=True))  # fmt: skip
            raise
        finally:
            entry.inflight = None
