"""The one exception tree of ssoio.

Every class carries a stable machine ``code`` (the wire codes of DESIGN.md) and a
human message that never contains a token, cookie or secret. Library errors are
wrapped with ``raise ... from exc``; translation to HTTP statuses or Socket.IO
``connect_error`` / ack errors happens only at the edges (``realtime/``, ``web/``).

``detail`` carries what the operator needs to fix a refusal (what the token carried and
what was expected: issuer, audience, ``typ``, ``alg``, ``kid``, times, and a hint), for
audit lines and the CLI only: clients get ``as_dict()`` (code and short message), never
it. It holds claim and header values clipped to ``DETAIL_MAX`` characters, never a
signature or a whole token::

    SsoioError
    ├── ConfigError                  config_invalid   (carries every Problem at once)
    ├── AuthenticationError          -> "unauthorized": no identity could be established
    │   ├── TokenMissing             token_missing
    │   ├── TokenMalformed           token_malformed
    │   ├── TokenExpired             token_expired
    │   ├── TokenNotYetValid         token_not_yet_valid
    │   ├── SignatureInvalid         signature_invalid
    │   ├── AlgorithmNotAllowed      algorithm_not_allowed
    │   ├── IssuerUnknown            issuer_unknown
    │   ├── AudienceMismatch         audience_mismatch
    │   ├── KeyUnknown               key_unknown
    │   ├── TokenRevoked             token_revoked
    │   ├── ClaimsInvalid            claims_invalid
    │   └── IdpUnavailable           idp_unavailable
    ├── ClusterUnavailable           cluster_unavailable (Redis unreachable: an extension)
    ├── AccessDenied                 -> "forbidden": identity is fine, the action is not
    │   ├── OriginDenied             origin_denied
    │   ├── RateLimited              rate_limited
    │   ├── NamespaceForbidden       namespace_forbidden
    │   └── Forbidden                forbidden
    └── RequestRejected              an event that cannot be processed as sent
        ├── InvalidPayload           invalid_payload
        ├── PayloadTooLarge          payload_too_large
        ├── UnknownEvent             unknown_event
        └── ReauthRequired           reauth_required
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "DETAIL_MAX",
    "AccessDenied",
    "AlgorithmNotAllowed",
    "AudienceMismatch",
    "AuthenticationError",
    "ClaimsInvalid",
    "ClusterUnavailable",
    "ConfigError",
    "Forbidden",
    "IdpUnavailable",
    "InvalidPayload",
    "IssuerUnknown",
    "KeyUnknown",
    "NamespaceForbidden",
    "OriginDenied",
    "PayloadTooLarge",
    "Problem",
    "RateLimited",
    "ReauthRequired",
    "RequestRejected",
    "SignatureInvalid",
    "SsoioError",
    "TokenExpired",
    "TokenMalformed",
    "TokenMissing",
    "TokenNotYetValid",
    "TokenRevoked",
    "UnknownEvent",
]


DETAIL_MAX = 128  # a value longer than this is clipped: no whole token fits in a detail


class SsoioError(Exception):
    """Root of every error ssoio raises on purpose.

    :param message: human text, safe to show to a client (never a token or secret).
    :param claim: the claim or field at fault, when there is one.
    :param detail: for operators only (audit, CLI): ``seen`` and ``expected`` values and a
        ``hint``; never sent to clients.
    """

    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        claim: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.claim = claim
        self.detail: dict[str, Any] = dict(detail or {})
        super().__init__(self.message)

    def as_dict(self) -> dict[str, str]:
        """The ``{"code", "message"}`` body used on the wire."""
        return {"code": self.code, "message": self.message}

    def explained(self, **detail: Any) -> SsoioError:
        """Add operator detail (keys already set win: the innermost knew most); ``self``."""
        self.detail = {**detail, **self.detail}
        return self

    def for_operator(self) -> dict[str, Any]:
        """Code, message and detail: what audit lines and the CLI show."""
        return {**self.as_dict(), **({"detail": self.detail} if self.detail else {})}


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem, located by its key path (``issuers[0].audiences``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(SsoioError):
    """The configuration is unusable; ``problems`` lists every problem found at once."""

    code = "config_invalid"
    default_message = "invalid configuration"

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or self.default_message)


class AuthenticationError(SsoioError):
    """No valid identity: the edge answers ``unauthorized`` (HTTP 401)."""

    code = "unauthorized"
    default_message = "authentication failed"


class TokenMissing(AuthenticationError):
    code = "token_missing"
    default_message = "no access token was presented"


class TokenMalformed(AuthenticationError):
    code = "token_malformed"
    default_message = "the access token is not a well-formed token"


class TokenExpired(AuthenticationError):
    code = "token_expired"
    default_message = "the access token has expired"


class TokenNotYetValid(AuthenticationError):
    code = "token_not_yet_valid"
    default_message = "the access token is not valid yet"


class SignatureInvalid(AuthenticationError):
    code = "signature_invalid"
    default_message = "the access token signature is invalid"


class AlgorithmNotAllowed(AuthenticationError):
    code = "algorithm_not_allowed"
    default_message = "the token's signing algorithm is not allowed"


class IssuerUnknown(AuthenticationError):
    code = "issuer_unknown"
    default_message = "the token's issuer is not trusted"


class AudienceMismatch(AuthenticationError):
    code = "audience_mismatch"
    default_message = "the token is not meant for this service"


class KeyUnknown(AuthenticationError):
    code = "key_unknown"
    default_message = "the token was signed with a key the issuer does not publish"


class TokenRevoked(AuthenticationError):
    code = "token_revoked"
    default_message = "the access token is no longer active"


class ClaimsInvalid(AuthenticationError):
    code = "claims_invalid"
    default_message = "the token's claims are invalid"


class IdpUnavailable(AuthenticationError):
    code = "idp_unavailable"
    default_message = "the identity provider cannot be reached"


class ClusterUnavailable(SsoioError):
    """What needs the cluster's shared state (Redis) cannot be done right now."""

    code = "cluster_unavailable"
    default_message = "shared state is unavailable; try again shortly"


class AccessDenied(SsoioError):
    """A valid identity that may not do this: the edge answers ``forbidden`` (HTTP 403)."""

    code = "forbidden"
    default_message = "not allowed"


class OriginDenied(AccessDenied):
    code = "origin_denied"
    default_message = "this origin is not allowed"


class RateLimited(AccessDenied):
    code = "rate_limited"
    default_message = "too many requests; slow down"


class NamespaceForbidden(AccessDenied):
    code = "namespace_forbidden"
    default_message = "this namespace is not allowed"


class Forbidden(AccessDenied):
    code = "forbidden"
    default_message = "not allowed"


class RequestRejected(SsoioError):
    """An event that cannot be processed as sent (HTTP 400)."""

    code = "invalid_payload"
    default_message = "invalid request"


class InvalidPayload(RequestRejected):
    code = "invalid_payload"
    default_message = "the payload does not have the expected shape"


class PayloadTooLarge(RequestRejected):
    code = "payload_too_large"
    default_message = "the payload is too large"


class UnknownEvent(RequestRejected):
    code = "unknown_event"
    default_message = "this event is not known"


class ReauthRequired(RequestRejected):
    code = "reauth_required"
    default_message = "the connection must re-authenticate first"
