"""Configuration sections of the running server: listener, realtime limits, server API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from ssoio.config.base import Section
from ssoio.config.operations import TlsSettings
from ssoio.config.policy import KickSettings, RequirementSpec

__all__ = ["ApiSettings", "BucketSettings", "LimitSettings", "RealtimeSettings", "ServerSettings"]


def _origin(value: str) -> str:
    if value == "*":
        return value
    scheme, sep, rest = value.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
        raise ValueError("an origin is scheme://host[:port], without a path")
    return value.lower()


Origin = Annotated[str, AfterValidator(_origin)]


class ServerSettings(Section):
    """Where ssoio listens and how browsers reach it."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    public_url: Annotated[str, Field(pattern=r"^https?://[^/]+(/.*)?$")] = "http://127.0.0.1:8000"
    allowed_origins: tuple[Origin, ...] = ()
    websocket_compression: bool = False
    # "ssoio": ssoio's transport classes where each is verified against the installed
    # dependency (ssoio.transport.gates); "stock": the dependencies' own classes
    # everywhere, with the protections public seams keep (docs/security.md)
    transport: Literal["ssoio", "stock"] = "ssoio"
    insecure_allow_query_token: bool = False
    trusted_proxies: tuple[str, ...] = ()
    tls: TlsSettings = TlsSettings()
    shutdown_grace_s: float = Field(10, ge=0, le=300)
    # The HTTP edge, below every route (ssoio.transport.edge): request head and body sizes, read
    # deadlines against slow clients, open TCP connections per client address.
    max_request_line_bytes: int = Field(8192, ge=256, le=1024 * 1024)
    max_header_line_bytes: int = Field(32768, ge=1024, le=8 * 1024 * 1024)
    max_header_bytes: int = Field(65536, ge=2048, le=16 * 1024 * 1024)
    max_headers: int = Field(100, ge=16, le=10_000)
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    header_timeout_s: float = Field(10, gt=0, le=600)
    body_timeout_s: float = Field(20, gt=0, le=3600)
    max_connections_per_address: int = Field(4000, ge=1)
    max_partial_heads_per_address: int = Field(256, ge=1)


class RealtimeSettings(Section):
    """Socket.IO connections: unauthenticated sessions, message sizes, token lifetime."""

    unauthenticated_timeout_s: float = Field(5, gt=0, le=120)
    max_unauthenticated_per_ip: int = Field(20, ge=1)
    max_payload_bytes: int = Field(16384, ge=256, le=16 * 1024 * 1024)
    expiry_warning_s: float = Field(60, ge=0)
    ping_interval_s: float = Field(25, gt=0)
    ping_timeout_s: float = Field(20, gt=0)
    max_backlog_packets: int = Field(1000, ge=10)


class BucketSettings(Section):
    """A token bucket: ``rate`` tokens per second, up to ``burst``."""

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


class LimitSettings(Section):
    """Rate limits; exceeding one gives ``rate_limited`` to that client only."""

    connects_per_ip: BucketSettings = BucketSettings(rate=5, burst=30)
    failed_auth_per_ip: BucketSettings = BucketSettings(rate=0.5, burst=10)
    events_per_connection: BucketSettings = BucketSettings(rate=20, burst=50)
    events_per_user: BucketSettings = BucketSettings(rate=50, burst=150)
    # GET /auth/login per client address (IPv6 by /64): a whole office behind one NAT
    # address may sign in at once (the burst), a script may not flood the route.
    logins_per_ip: BucketSettings = BucketSettings(rate=5, burst=300)
    # GET /auth/frontchannel-logout per client address: the provider's logout page of
    # everyone behind one address (the burst), not a flood.
    logouts_per_ip: BucketSettings = BucketSettings(rate=5, burst=300)
    max_tracked_keys: int = Field(100_000, ge=100)


class ApiSettings(Section):
    """The server API for corporate backends (``/api/v1/...``)."""

    enabled: bool = True
    requires: RequirementSpec = "scope:ssoio:emit"
    admin_requires: RequirementSpec = "scope:ssoio:admin"
    # Client ids (the token's client_id, else azp, else cid) whose tokens may call the API:
    # a scope alone also lets through user tokens that happen to carry it. Empty: any
    # client (refused in production mode).
    clients: tuple[Annotated[str, Field(min_length=1, max_length=255)], ...] = ()
    # POST /api/v1/disconnect: the caller must share each attribute with the target (as
    # an event's ``kick.same_attributes``); connections that do not are skipped.
    disconnect: KickSettings = KickSettings()
