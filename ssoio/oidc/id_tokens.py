"""ID tokens (OpenID Connect Core 1.0 §3.1.3.7) and back-channel logout tokens (OpenID
Connect Back-Channel Logout 1.0 §2.4, §2.6), checked through the same key store as
access tokens. Claim checks are pure functions of (claims, expectations, now).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ssoio.config.model import IssuerSettings
from ssoio.errors import AudienceMismatch, ClaimsInvalid, TokenExpired, TokenNotYetValid
from ssoio.oidc.compact import parse_compact
from ssoio.oidc.jwks import KeyStore
from ssoio.oidc.signatures import check_signature

__all__ = [
    "BACKCHANNEL_LOGOUT_EVENT",
    "Expectations",
    "check_id_token_claims",
    "check_logout_token_claims",
    "verify_signed",
]

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
_MAX_BYTES = 16384


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the relying party (ssoio's login client) expects of a token."""

    issuer: str
    client_id: str
    leeway_s: float
    max_age_s: float = math.inf  # how old ``iat`` may be (logout tokens)


async def verify_signed(
    token: object, keys: KeyStore, issuer: IssuerSettings, refused_types: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Parse and signature-check a JWT of ``issuer``; return its claims (unchecked).

    :raises AuthenticationError:
    """
    if not isinstance(token, str) or not token:
        raise ClaimsInvalid("no token was sent")
    jws = parse_compact(token, _MAX_BYTES)
    typ = str(jws.header.get("typ", "")).lower().removeprefix("application/")
    if typ in refused_types:  # explicit typing (RFC 8725 §3.11): no token confusion
        raise ClaimsInvalid(f"a {typ} token is not accepted here", claim="typ")
    await check_signature(keys, issuer, jws)
    return jws.claims


def check_id_token_claims(
    claims: Mapping[str, Any], expected: Expectations, nonce: str | None, now: float
) -> None:
    """OIDC Core §3.1.3.7 steps 2-3, 9-11: iss, aud, azp, exp, iat, nonce.

    :raises ClaimsInvalid | AudienceMismatch | TokenExpired | TokenNotYetValid:
    """
    _issuer_and_audience(claims, expected)
    azp = claims.get("azp")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if (azp is not None or len(audiences) > 1) and azp != expected.client_id:
        raise ClaimsInvalid("the ID token's azp is not this client", claim="azp")
    _times(claims, expected, now, require_exp=True)
    if nonce is not None and claims.get("nonce") != nonce:
        raise ClaimsInvalid("the ID token's nonce does not match this login", claim="nonce")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise ClaimsInvalid("the ID token has no sub", claim="sub")


def check_logout_token_claims(
    claims: Mapping[str, Any], expected: Expectations, now: float
) -> None:
    """Back-Channel Logout 1.0 §2.6 steps 3-7 (the jti replay check is the caller's).

    :raises ClaimsInvalid | AudienceMismatch | TokenExpired | TokenNotYetValid:
    """
    _issuer_and_audience(claims, expected)
    _times(claims, expected, now, require_exp=False)
    sub, sid = claims.get("sub"), claims.get("sid")
    if sub is None and sid is None:
        raise ClaimsInvalid("a logout token names a sub, a sid or both", claim="sid")
    for name, value in (("sub", sub), ("sid", sid)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ClaimsInvalid(f"the logout token's {name} is not a string", claim=name)
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise ClaimsInvalid("the logout token has no back-channel logout event", claim="events")
    if "nonce" in claims:  # §2.4: a nonce is forbidden, so an ID token cannot pass as one
        raise ClaimsInvalid("a logout token must not contain a nonce", claim="nonce")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise ClaimsInvalid("the logout token has no jti", claim="jti")


def _issuer_and_audience(claims: Mapping[str, Any], expected: Expectations) -> None:
    if claims.get("iss") != expected.issuer:
        raise ClaimsInvalid("the token's iss is not the login issuer", claim="iss")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or expected.client_id not in audiences:
        raise AudienceMismatch("the token is not for this client", claim="aud")


def _times(
    claims: Mapping[str, Any], expected: Expectations, now: float, *, require_exp: bool
) -> None:
    iat = _number(claims, "iat", required=True)
    exp = _number(claims, "exp", required=require_exp)
    assert iat is not None
    if iat > now + expected.leeway_s:
        raise TokenNotYetValid("the token was issued in the future", claim="iat")
    if now - iat > expected.max_age_s + expected.leeway_s:
        raise TokenExpired("the token is too old", claim="iat")
    if exp is not None and now > exp + expected.leeway_s:
        raise TokenExpired()


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ClaimsInvalid(f"the token's {name} is not a number", claim=name)
    return float(value)
