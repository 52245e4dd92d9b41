"""The typed, frozen configuration model.

Every key of ``config/ssoio.example.toml`` has a field here, with its default.
Unknown keys are errors (``extra="forbid"``). Field-level checks live next to the
field; checks that span fields live in ``validation.py`` so that every problem can
be reported at once with its key path.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr

from ssoio.config.base import Section
from ssoio.config.cluster import ClusterSettings
from ssoio.config.login import AdminSettings, LoginSettings
from ssoio.config.operations import LoggingSettings, MetricsSettings
from ssoio.config.policy import (
    ClaimMappingSettings,
    EventName,
    EventRule,
    PolicySettings,
    PresenceSettings,
    RoomRule,
)
from ssoio.config.recovery import RecoverySettings
from ssoio.config.server import ApiSettings, LimitSettings, RealtimeSettings, ServerSettings

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "IntrospectionSettings",
    "IssuerSettings",
    "KeyCacheSettings",
    "Settings",
    "TokenSettings",
]

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
        "Ed25519",
    }
)

Algorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512", "EdDSA", "Ed25519", "HS256", "HS384", "HS512",
]  # fmt: skip
TokenType = Literal["at+jwt", "JWT"]


def _absolute_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


def _issuer_identifier(value: str) -> str:
    # OIDC Discovery 1.0 §2 / RFC 8414 §2: https URL with no query or fragment.
    _absolute_http_url(value)
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        raise ValueError("an issuer identifier has no query or fragment")
    return value


HttpUrl = Annotated[str, AfterValidator(_absolute_http_url)]
IssuerUrl = Annotated[str, AfterValidator(_issuer_identifier)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
NonEmpty = Annotated[str, Field(min_length=1, max_length=512)]


class KeyCacheSettings(Section):
    """How an issuer's discovery document and JWKS are fetched and cached."""

    jwks_ttl_s: float = Field(300, gt=0)
    refetch_cooldown_s: float = Field(30, ge=0)
    stale_limit_s: float = Field(21600, gt=0)
    discovery_ttl_s: float = Field(3600, gt=0)
    # The whole exchange (connect, request, every byte of the answer), not only each read:
    # a provider trickling its answer byte by byte must not hold connects for minutes.
    http_timeout_s: float = Field(5, gt=0, le=60)
    max_jwks_bytes: int = Field(262144, ge=1024, le=16 * 1024 * 1024)
    max_keys: int = Field(32, ge=1, le=1024)


class IntrospectionSettings(Section):
    """RFC 7662 token introspection, for issuers that hand out opaque access tokens."""

    endpoint: HttpUrl
    client_id: NonEmpty
    client_secret: SecretStr
    cache_max_s: float = Field(60, ge=0)
    negative_cache_s: float = Field(10, ge=0)


class IssuerSettings(Section):
    """One trusted identity provider (or realm)."""

    name: Name
    issuer: IssuerUrl
    jwks_uri: HttpUrl | None = None
    audiences: tuple[NonEmpty, ...] = Field(min_length=1)
    algorithms: tuple[Algorithm, ...] = Field(("RS256",), min_length=1)
    leeway_s: float = Field(30, ge=0, le=300)
    required_claims: tuple[NonEmpty, ...] = ()
    token_types: tuple[TokenType, ...] = Field(("at+jwt",), min_length=1)
    authorized_parties: tuple[NonEmpty, ...] = ()
    introspection: IntrospectionSettings | None = None
    keys: KeyCacheSettings = KeyCacheSettings()
    claims: ClaimMappingSettings = ClaimMappingSettings()

    @property
    def strict_rfc9068(self) -> bool:
        """Strict RFC 9068 mode: only ``typ: at+jwt`` tokens are accepted."""
        return "JWT" not in self.token_types


class TokenSettings(Section):
    """Limits and caches shared by every issuer."""

    max_bytes: int = Field(16384, ge=512, le=1024 * 1024)
    cache_size: int = Field(10000, ge=0, le=10_000_000)
    # A signed token with exp far in the future (1e20) would never expire; providers issue
    # access tokens for minutes to hours. Refused when exp - iat or exp - now exceeds it.
    max_lifetime_s: float = Field(86400, gt=0, le=366 * 86400)


class Settings(Section):
    """The whole configuration file."""

    mode: Literal["development", "production"] = "development"
    server: ServerSettings = ServerSettings()
    realtime: RealtimeSettings = RealtimeSettings()
    limits: LimitSettings = LimitSettings()
    api: ApiSettings = ApiSettings()
    login: LoginSettings = LoginSettings()
    admin: AdminSettings = AdminSettings()
    logging: LoggingSettings = LoggingSettings()
    metrics: MetricsSettings = MetricsSettings()
    cluster: ClusterSettings = ClusterSettings()
    recovery: RecoverySettings = RecoverySettings()
    tokens: TokenSettings = TokenSettings()
    issuers: tuple[IssuerSettings, ...] = Field(min_length=1)
    policy: PolicySettings = PolicySettings()
    rooms: tuple[RoomRule, ...] = ()
    events: dict[EventName, EventRule] = Field(default_factory=dict)
    presence: PresenceSettings = PresenceSettings()

    def issuer_named(self, name: str) -> IssuerSettings | None:
        """The issuer whose ``name`` is ``name``, if any."""
        return next((i for i in self.issuers if i.name == name), None)

    @property
    def login_issuer(self) -> IssuerSettings:
        """The issuer browsers sign in with (``login.issuer``, else the first)."""
        named = self.issuer_named(self.login.issuer) if self.login.issuer else None
        return named or self.issuers[0]
