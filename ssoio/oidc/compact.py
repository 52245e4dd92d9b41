"""Strict parsing of JWS compact serialisations (RFC 7515 §7.1), before any crypto.

JOSE libraries are lenient in places that matter to a gateway, so the structure is
checked here, once, with plain data in and a frozen value out:

* three base64url segments of the URL-safe alphabet without padding (RFC 7515 §2);
  five segments is a JWE, which ssoio does not accept (no keys to decrypt with);
* header and payload are JSON objects without duplicate member names (RFC 7515 §5.2,
  RFC 7519 §4: reject rather than guess which one the issuer meant) and without
  NaN/Infinity;
* ``crit`` is refused: ssoio understands no extension (RFC 7515 §4.1.11); so are ``b64``
  (RFC 7797 unencoded payloads), ``zip`` (not defined for JWS) and nested JWTs
  (``cty: JWT``, RFC 7519 §5.2);
* other header parameters, including ``jku``, ``x5u``, ``jwk`` and ``x5c``, are ignored:
  keys are only ever found through the configured issuer's JWKS.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any

from ssoio.errors import AlgorithmNotAllowed, TokenMalformed

__all__ = ["CompactJWS", "parse_compact"]

_URLSAFE = bytes.maketrans(b"-_", b"+/")
_REFUSED_HEADERS = {
    "crit": "critical header extensions are not supported",
    "b64": "unencoded payloads (RFC 7797) are not accepted",
    "zip": "compressed JWS payloads are not accepted",
}


@dataclass(frozen=True, slots=True)
class CompactJWS:
    """A structurally valid, not yet verified, compact JWS."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


def parse_compact(token: str, max_bytes: int) -> CompactJWS:
    """Parse ``token`` or raise ``TokenMalformed`` / ``AlgorithmNotAllowed``."""
    if len(token) > max_bytes:
        raise TokenMalformed(f"the token is larger than {max_bytes} bytes")
    parts = token.split(".")
    if len(parts) == 5:
        raise TokenMalformed("encrypted tokens (JWE) are not accepted")
    # RFC 7515 §2: base64url without padding; "+", "/" and "=" are not in its alphabet
    # (the strict decoder below rejects every other character outside it).
    if len(parts) != 3 or not token.isascii() or "+" in token or "/" in token or "=" in token:
        raise TokenMalformed("the token is not a compact JWS (three base64url parts)")
    header = _json_object(_b64decode(parts[0]), "header")
    _check_header(header)
    if not parts[2]:
        raise TokenMalformed("the token is not signed")
    claims = _json_object(_b64decode(parts[1]), "payload")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return CompactJWS(header, claims, signing_input, _b64decode(parts[2]))


def _check_header(header: dict[str, Any]) -> None:
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise TokenMalformed("the token header has no alg")
    if alg.lower() == "none":  # RFC 8725 §3.1: unsecured tokens are never accepted
        raise AlgorithmNotAllowed(
            "unsigned tokens (alg none) are not accepted",
            detail={"seen": {"alg": alg[:16]}, "expected": "a signed token"},
        )
    for name, reason in _REFUSED_HEADERS.items():
        if name in header:
            raise TokenMalformed(reason)
    if str(header.get("cty", "")).upper() == "JWT":
        raise TokenMalformed("nested tokens are not accepted")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenMalformed("the token's kid is not a string")


def _b64decode(segment: str) -> bytes:
    try:
        data = segment.encode("ascii").translate(_URLSAFE) + b"=" * (-len(segment) % 4)
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise TokenMalformed("the token is not valid base64url") from exc


def _json_object(data: bytes, part: str) -> dict[str, Any]:
    try:
        value = _DECODER.decode(data.decode("utf-8"))  # RFC 7519 §7.2: UTF-8 JSON
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise TokenMalformed(f"the token {part} is not a JSON object") from exc
    if not isinstance(value, dict):
        raise TokenMalformed(f"the token {part} is not a JSON object")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member names")
    return result


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads with options constructs a new decoder on every call.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_refuse)
