"""Access-token claim checks: pure functions of (header, claims, rules, now).

They enforce RFC 9068 (JWT profile for OAuth 2.0 access tokens) and RFC 7519 on a token
whose signature has already been verified, and raise the error whose stable code says
what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ssoio.config.model import IssuerSettings
from ssoio.errors import (
    AudienceMismatch,
    ClaimsInvalid,
    TokenExpired,
    TokenNotYetValid,
)
from ssoio.oidc.mismatch import clip

__all__ = ["ClaimRules", "authorized_party", "check_access_token", "check_token_type"]

# Members that only ID tokens carry (OIDC Core §2, §3.1.3.6, §3.3.2.11): an ID token
# presented as an access token is refused even when its audience would match.
_ID_TOKEN_MEMBERS = ("nonce", "at_hash", "c_hash", "s_hash")


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """The claim expectations of one issuer, precomputed from its settings."""

    issuer: str
    audiences: frozenset[str]
    leeway_s: float
    required: tuple[str, ...]
    authorized_parties: frozenset[str]
    strict_rfc9068: bool
    max_lifetime_s: float = math.inf

    @classmethod
    def from_settings(
        cls, settings: IssuerSettings, max_lifetime_s: float = math.inf
    ) -> ClaimRules:
        required = ("sub", "exp", "iat", *settings.required_claims)
        if settings.strict_rfc9068:
            required += ("client_id", "jti")  # RFC 9068 §2.2
        return cls(
            issuer=settings.issuer,
            audiences=frozenset(settings.audiences),
            leeway_s=settings.leeway_s,
            required=tuple(dict.fromkeys(required)),
            authorized_parties=frozenset(settings.authorized_parties),
            strict_rfc9068=settings.strict_rfc9068,
            max_lifetime_s=max_lifetime_s,
        )


def check_token_type(header: Mapping[str, Any], rules: ClaimRules) -> None:
    """RFC 9068 §4: the ``typ`` header must be ``at+jwt`` (``application/`` optional).

    In compatible mode (for providers such as Keycloak and Entra ID) ``JWT`` or no
    ``typ`` is accepted as well. Media types compare case-insensitively (RFC 7515 §4.1.9).
    """
    typ = header.get("typ")
    if typ is not None and not isinstance(typ, str):
        raise ClaimsInvalid(
            "the token's typ header is not a string",
            claim="typ",
            detail={"seen": {"typ": clip(typ)}, "expected": "a string"},
        )
    normalised = (typ or "").lower().removeprefix("application/")
    if normalised == "at+jwt":
        return
    if not rules.strict_rfc9068 and normalised in ("", "jwt"):
        return
    raise ClaimsInvalid(
        "this token type is not accepted as an access token",
        claim="typ",
        detail=_typ_detail(typ, normalised, rules),
    )


def _typ_detail(typ: str | None, normalised: str, rules: ClaimRules) -> dict[str, Any]:
    accepted = ["at+jwt"] if rules.strict_rfc9068 else ["at+jwt", "JWT"]
    detail: dict[str, Any] = {
        "seen": {"typ": clip(typ) if typ is not None else "(none)"},
        "expected": {"token_types": accepted},
    }
    if rules.strict_rfc9068 and normalised in ("", "jwt"):
        # RFC 9068 §4 wants at+jwt; Keycloak, Entra ID, Okta, Auth0 and LemonLDAP::NG send
        # JWT or nothing: the compatible mode is what accepts their access tokens.
        detail["hint"] = 'token_types = ["at+jwt", "JWT"] accepts it (compatible mode)'
    elif normalised not in ("", "jwt"):
        detail["hint"] = "this is not an access token (an ID or logout token?)"
    return detail


def check_access_token(claims: Mapping[str, Any], rules: ClaimRules, now: float) -> float:
    """Check every claim of a verified access token; return its expiry time.

    :raises ClaimsInvalid | TokenExpired | TokenNotYetValid | AudienceMismatch:
    """
    if claims.get("iss") != rules.issuer:  # RFC 9068 §4 / RFC 7519 §4.1.1: exact match
        raise ClaimsInvalid(
            "the token's iss does not match its issuer",
            claim="iss",
            detail={"seen": {"iss": clip(claims.get("iss"))}, "expected": {"iss": rules.issuer}},
        )
    for name in rules.required:
        if claims.get(name) is None:
            raise ClaimsInvalid(
                f"the token has no {name} claim", claim=name, detail=_required_detail(name, rules)
            )
    _check_subject(claims)
    _check_not_an_id_token(claims)
    expires_at = _check_times(claims, rules.leeway_s, now)
    _check_lifetime(claims, expires_at, rules, now)
    _check_audience(claims, rules.audiences)
    _check_authorized_party(claims, rules.authorized_parties)
    return expires_at


def _required_detail(name: str, rules: ClaimRules) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "seen": {"missing": name},
        "expected": {"required": list(rules.required)},
    }
    if rules.strict_rfc9068 and name in ("client_id", "jti"):
        detail["hint"] = (
            f'strict RFC 9068 mode (token_types = ["at+jwt"]) requires {name}; '
            'token_types = ["at+jwt", "JWT"] does not'
        )
    return detail


def _check_subject(claims: Mapping[str, Any]) -> None:
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.strip() or len(sub) > 255:
        raise ClaimsInvalid("the token's sub is not a non-empty string", claim="sub")


def _check_not_an_id_token(claims: Mapping[str, Any]) -> None:
    kind = str(claims.get("typ", "")).lower()  # Keycloak's own "typ" claim: ID or Bearer
    marker = next((m for m in _ID_TOKEN_MEMBERS if m in claims), None)
    if marker == "nonce" and kind == "bearer":
        marker = None  # Keycloak before 25 copies the nonce into its (Bearer) access tokens
    if marker or kind == "id":
        raise ClaimsInvalid(
            "an ID token is not an access token",
            claim=marker or "typ",
            detail={
                "seen": {"id_token_member": marker or "typ=ID"},
                "expected": "an access token",
                "hint": "send the access token of the token response, not its id_token",
            },
        )


def _check_times(claims: Mapping[str, Any], leeway: float, now: float) -> float:
    exp = _numeric_date(claims, "exp")
    iat = _numeric_date(claims, "iat")
    nbf = _numeric_date(claims, "nbf")
    if exp is not None and now > exp + leeway:  # RFC 7519 §4.1.4
        raise TokenExpired(detail=_time_detail("exp", exp, now, leeway))
    if nbf is not None and now + leeway < nbf:  # RFC 7519 §4.1.5
        raise TokenNotYetValid(detail=_time_detail("nbf", nbf, now, leeway))
    if iat is not None and iat > now + leeway:  # issued in the future: a clock or a forgery
        raise TokenNotYetValid(
            "the token was issued in the future",
            claim="iat",
            detail=_time_detail("iat", iat, now, leeway),
        )
    return exp if exp is not None else math.inf


def _time_detail(name: str, value: float, now: float, leeway: float) -> dict[str, Any]:
    """exp/nbf/iat against this server's clock and the leeway (issuers.leeway_s)."""
    past = now - value
    when = f"{past:.0f} s ago" if past >= 0 else f"in {-past:.0f} s"
    return {
        "seen": {name: value, "at": when},
        "expected": {"now": round(now), "leeway_s": leeway},
        "hint": f"{name} is {when} by this server's clock, beyond the leeway of {leeway:g} s"
        + ("; check both clocks (NTP)" if abs(past) < 3600 else ""),
    }


def _check_lifetime(
    claims: Mapping[str, Any], expires_at: float, rules: ClaimRules, now: float
) -> None:
    # RFC 7519 §4.1.4 sets no upper bound on exp, but a token valid for years (or for
    # exp = 1e20) is a bearer credential that never dies: refuse lifetimes above the
    # configured maximum, measured from iat and, as iat may be absent or old, from now.
    limit = rules.max_lifetime_s
    if math.isinf(limit) or math.isinf(expires_at):
        return
    iat = _numeric_date(claims, "iat")
    if iat is not None and expires_at - iat > limit:
        raise ClaimsInvalid(
            f"the token's lifetime (exp - iat) is {_seconds(expires_at - iat)}, above "
            f"tokens.max_lifetime_s = {_seconds(limit)}",
            claim="exp",
            detail={"seen": {"exp": expires_at, "iat": iat}, "expected": {"max_lifetime_s": limit}},
        )
    if expires_at - now > limit + rules.leeway_s:
        raise ClaimsInvalid(
            f"the token expires in {_seconds(expires_at - now)}, above "
            f"tokens.max_lifetime_s = {_seconds(limit)}",
            claim="exp",
            detail={"seen": {"exp": expires_at}, "expected": {"max_lifetime_s": limit}},
        )


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 1e15 else f"{value:.3g} s"


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # RFC 7519 §2 NumericDate: a JSON number; bool is an int subclass in Python.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ClaimsInvalid(
            f"the token's {name} is not a number",
            claim=name,
            detail={"seen": {name: clip(value)}, "expected": "a NumericDate"},
        )
    return float(value)


def _check_audience(claims: Mapping[str, Any], audiences: frozenset[str]) -> None:
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud
    expected = {"audiences": sorted(audiences)}
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise AudienceMismatch(
            "the token's aud is missing or not a string or list",
            claim="aud",
            detail={"seen": {"aud": clip(aud)}, "expected": expected},
        )
    if audiences.isdisjoint(values):  # RFC 9068 §4: aud must name this resource server
        raise AudienceMismatch(
            claim="aud",
            detail={
                "seen": {"aud": clip(values)},
                "expected": expected,
                "hint": f"have the provider add {sorted(audiences)[0]!r} to the token's aud (an "
                "audience mapper, API identifier or additional audience), or, if the token is "
                "meant for ssoio, add one of the seen values to issuers.audiences",
            },
        )


def authorized_party(claims: Mapping[str, Any]) -> str | None:
    """The client a token was issued to, or ``None`` when it names none (or not as a string).

    RFC 9068 §2.2 names it ``client_id``; Keycloak and OIDC use ``azp``, Okta ``cid``.
    """
    party = next((claims[k] for k in ("client_id", "azp", "cid") if k in claims), None)
    return party if isinstance(party, str) else None


def _check_authorized_party(claims: Mapping[str, Any], parties: frozenset[str]) -> None:
    if not parties:
        return
    party = authorized_party(claims)
    if party is None or party not in parties:
        raise ClaimsInvalid(
            "the token was issued to a client that is not allowed",
            claim="azp",
            detail={
                "seen": {"client": clip(party)},
                "expected": {"authorized_parties": sorted(parties)},
            },
        )
