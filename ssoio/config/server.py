"""Configuration sections of the running server: listener, realtime limits, server API."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from ssoio.config.base import Section
from ssoio.config.operations import TlsSettings
from ssoio.config.policy import KickSettings, RequirementSpec

__all__ = [
    "AddressRange",
    "ApiSettings",
    "BucketSettings",
    "LimitSettings",
    "RealtimeSettings",
    "ServerSettings",
    "TenantLimits",
]


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
    # 10,000 people behind one NAT address need 10,000 sockets, and twice that while
    # long-polling clients upgrade or a second tab is open: the cap bounds what one address
    # can take of a node's file descriptors, not what an office needs.
    max_connections_per_address: int = Field(20_000, ge=1)
    max_partial_heads_per_address: int = Field(256, ge=1)


class RealtimeSettings(Section):
    """Socket.IO connections: unauthenticated sessions, message sizes, token lifetime."""

    unauthenticated_timeout_s: float = Field(5, gt=0, le=120)
    # Sessions of one address that have not authenticated after handshake_window_s (a real
    # client sends its CONNECT within milliseconds of the handshake): an office's honest
    # handshakes in flight are younger and do not count here ...
    max_unauthenticated_per_ip: int = Field(20, ge=1)
    handshake_window_s: float = Field(2, gt=0, le=60)
    # ... but are bounded too: at most this many sessions of one address inside the window
    max_handshakes_per_ip: int = Field(500, ge=1)
    max_payload_bytes: int = Field(16384, ge=256, le=16 * 1024 * 1024)
    expiry_warning_s: float = Field(60, ge=0)
    ping_interval_s: float = Field(25, gt=0)
    ping_timeout_s: float = Field(20, gt=0)
    max_backlog_packets: int = Field(1000, ge=10)


class BucketSettings(Section):
    """A token bucket: ``rate`` tokens per second, up to ``burst``."""

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError as exc:
        raise ValueError("an address range is a CIDR such as 203.0.113.0/28") from exc


Network = Annotated[str, AfterValidator(_network)]


class AddressRange(Section):
    """Named client addresses (a corporate egress, a VPN concentrator) that share one
    budget of their own instead of one per address."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    cidrs: tuple[Network, ...] = Field(min_length=1)
    connects: BucketSettings = BucketSettings(rate=50, burst=2000)
    failed_auth: BucketSettings = BucketSettings(rate=5, burst=500)
    max_unauthenticated: int = Field(500, ge=1)
    max_handshakes: int = Field(5000, ge=1)


class TenantLimits(Section):
    """Limits per tenant: the principal attribute ``attribute`` names it (the first value
    of a multi-valued one); a principal without it is not tenant-limited."""

    attribute: Annotated[str, Field(min_length=1, max_length=64)]
    connects: BucketSettings = BucketSettings(rate=100, burst=2000)
    max_sockets: int = Field(50_000, ge=1)


class LimitSettings(Section):
    """Rate limits; exceeding one gives ``rate_limited`` to that client only.

    Keyed by what they protect: addresses pay for what is anonymous or failed (an attempt
    spends ``connects_per_ip`` and gets it back when it authenticates), users (issuer,
    sub) and tenants for what is authenticated.
    """

    connects_per_ip: BucketSettings = BucketSettings(rate=5, burst=200)
    failed_auth_per_ip: BucketSettings = BucketSettings(rate=1, burst=60)
    connects_per_user: BucketSettings = BucketSettings(rate=1, burst=30)
    sockets_per_user: int = Field(20, ge=1)
    tenants: TenantLimits | None = None
    address_ranges: tuple[AddressRange, ...] = ()
    events_per_connection: BucketSettings = BucketSettings(rate=20, burst=50)
    events_per_user: BucketSettings = BucketSettings(rate=50, burst=150)
    # GET /auth/login per client address (IPv6 by /64): a login start stores nothing (one
    # cookie encryption); 10,000 people behind one NAT address sign in within a minute
    # (1000 + 200 x 60), a script may not use the route as a redirect pump.
    logins_per_ip: BucketSettings = BucketSettings(rate=200, burst=1000)
    # GET /auth/frontchannel-logout per client address: sized like logins (everyone behind
    # one address signing out at once), not a flood.
    logouts_per_ip: BucketSettings = BucketSettings(rate=200, burst=1000)
    max_tracked_keys: int = Field(100_000, ge=100)

    @model_validator(mode="after")
    def _distinct_ranges(self) -> LimitSettings:
        names = [r.name for r in self.address_ranges]
        if len(set(names)) != len(names):
            raise ValueError("address_ranges: each range needs a name of its own")
        return self


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
