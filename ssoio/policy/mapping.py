"""Claims -> Principal: where each provider keeps roles, groups, scopes and attributes.

``ClaimMapping.resolve`` merges an issuer's ``[issuers.claims]`` settings over its
preset; ``map_claims`` is a pure function of (claims, mapping). A claim of the wrong
type raises ``ClaimsInvalid`` naming the claim: never a crash, never a silently empty
role set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ssoio.config.policy import ClaimMappingSettings
from ssoio.errors import ClaimsInvalid
from ssoio.policy.presets import PRESETS
from ssoio.policy.principal import Principal
from ssoio.policy.requirements import normalise_group

__all__ = ["ClaimMapping", "map_claims"]

_MAX_VALUES = 1000  # more roles/groups than this in one token is junk, not an identity
_MAX_LENGTH = 1024

_SINGLE = ("subject", "username", "email", "name", "session_id", "client_id")
_MULTI = ("roles", "groups", "scopes")


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Resolved claim paths of one issuer."""

    subject: str
    username: str | None
    email: str | None
    name: str | None
    session_id: str | None
    client_id: str | None
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    scopes: tuple[str, ...]
    attributes: Mapping[str, str]

    @classmethod
    def resolve(cls, settings: ClaimMappingSettings) -> ClaimMapping:
        """The preset's paths, overridden by every key the operator set."""
        preset = PRESETS[settings.preset]
        chosen = {
            name: getattr(settings, name) if getattr(settings, name) is not None else preset[name]
            for name in (*_SINGLE, *_MULTI)
        }
        attributes = {**preset["attributes"], **settings.attributes}
        return cls(**chosen, attributes=MappingProxyType(attributes))


def map_claims(claims: Mapping[str, Any], mapping: ClaimMapping, issuer: str) -> Principal:
    """The principal that ``claims`` describe, for the issuer named ``issuer``.

    :raises ClaimsInvalid: a mapped claim has the wrong type (the claim is named).
    """
    subject = _string(claims, mapping.subject)
    if not subject:
        raise ClaimsInvalid(
            f"the subject claim {mapping.subject} is missing", claim=mapping.subject
        )
    exp = claims.get("exp")
    return Principal(
        issuer=issuer,
        subject=subject,
        username=_string(claims, mapping.username),
        email=_string(claims, mapping.email),
        name=_string(claims, mapping.name),
        roles=_interned(frozenset(_values(claims, mapping.roles))),
        groups=_interned(frozenset(normalise_group(g) for g in _values(claims, mapping.groups))),
        scopes=_interned(frozenset(_values(claims, mapping.scopes, split=True))),
        attributes=MappingProxyType(
            {
                name: tuple(_values(claims, (path,), numbers=True))
                for name, path in mapping.attributes.items()
            }
        ),
        session_id=_string(claims, mapping.session_id),
        client_id=_string(claims, mapping.client_id),
        expires_at=float(exp) if isinstance(exp, int | float) else float("inf"),
    )


_INTERNED: dict[frozenset[str], frozenset[str]] = {}


def _interned(values: frozenset[str]) -> frozenset[str]:
    """One shared set per distinct value: thousands of connections of a few kinds of users
    then hold a few sets, not thousands (bounded: cleared when it grows too large)."""
    if len(_INTERNED) > 10_000:
        _INTERNED.clear()
    return _INTERNED.setdefault(values, values)


def _lookup(claims: Mapping[str, Any], path: str) -> Any:
    if path in claims:  # a literal (possibly dotted, namespaced) claim name wins
        return claims[path]
    value: Any = claims
    for step in path.split("."):
        if not isinstance(value, Mapping):
            if value is None:
                return None
            raise ClaimsInvalid(f"claim {path}: {step!r} is not inside an object", claim=path)
        value = value.get(step)
    return value


def _string(claims: Mapping[str, Any], path: str | None) -> str | None:
    if path is None:
        return None
    value = _lookup(claims, path)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ClaimsInvalid(f"claim {path} is not a string", claim=path)
    if len(value) > _MAX_LENGTH:
        raise ClaimsInvalid(f"claim {path} is longer than {_MAX_LENGTH} characters", claim=path)
    return value or None


def _values(
    claims: Mapping[str, Any], paths: tuple[str, ...], *, split: bool = False, numbers: bool = False
) -> list[str]:
    values: list[str] = []
    for path in paths:
        value = _lookup(claims, path)
        if value is None:
            continue
        if isinstance(value, str):
            # Scopes are space-separated (RFC 6749 §3.3); a lone role or group arrives as
            # a bare string from some providers (ADFS, Okta group claims).
            values.extend(value.split() if split else [value])
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            values.extend(value)
        elif numbers and isinstance(value, int) and not isinstance(value, bool):
            values.append(str(value))  # attributes may be numeric ids, such as a tenant number
        else:
            raise ClaimsInvalid(f"claim {path} is not a string or a list of strings", claim=path)
        if len(values) > _MAX_VALUES or any(len(v) > _MAX_LENGTH for v in values):
            raise ClaimsInvalid(f"claim {path} has too many or too long values", claim=path)
    return values


def empty_claim_paths(claims: Mapping[str, Any], mapping: ClaimMapping) -> list[str]:
    """The mapped claim paths (roles, groups, scopes, attributes, profile) that ``claims``
    leave empty: where a misconfigured mapping shows (an empty role set looks like a user
    without roles)."""
    named = {
        "roles": mapping.roles,
        "groups": mapping.groups,
        "scopes": mapping.scopes,
        **{f"attributes.{k}": (v,) for k, v in mapping.attributes.items()},
        **{n: (p,) for n in ("username", "email", "name") if (p := getattr(mapping, n))},
    }
    empty = []
    for name, paths in named.items():
        try:
            found = [p for p in paths if _lookup(claims, p) not in (None, "", [])]
        except ClaimsInvalid:
            found = []
        if not found:
            empty.append(f"{name} ({', '.join(paths) or 'no path'})")
    return empty
