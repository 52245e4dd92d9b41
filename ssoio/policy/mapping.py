"""Claims -> Principal: where each provider keeps roles, groups, scopes and attributes.

``ClaimMapping.resolve`` merges an issuer's ``[issuers.claims]`` settings over its
preset; ``map_claims`` is a pure function of (claims, mapping). A claim of the wrong
type raises ``ClaimsInvalid`` naming the claim: never a crash, never a silently empty
role set.

A multi-valued claim released as one delimited string (LemonLDAP::NG's "users; earthlings")
is split only where the mapping says so (``split``); without it the string is one value,
and ``delimited_claims`` names such claims for ``ssoio doctor`` (the first one seen is
also logged once per process).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ssoio.config.policy import ClaimMappingSettings
from ssoio.errors import ClaimsInvalid
from ssoio.policy.presets import preset_named
from ssoio.policy.principal import Principal
from ssoio.policy.requirements import normalise_group

__all__ = ["ClaimMapping", "DelimitedClaim", "delimited_claims", "map_claims"]

log = logging.getLogger(__name__)

_MAX_VALUES = 1000  # more roles/groups than this in one token is junk, not an identity
_MAX_LENGTH = 1024

_SINGLE = ("subject", "username", "email", "name", "session_id", "client_id")
_MULTI = ("roles", "groups", "scopes")
# Separators that betray a list flattened into one string; whitespace is left out, as
# role and group names may contain spaces ("Domain Users").
_USUAL_SEPARATORS = (";", ",")


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
    split: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def resolve(cls, settings: ClaimMappingSettings, preset: str | None = None) -> ClaimMapping:
        """The preset's paths, overridden by every key the operator set.

        :param preset: the preset that ``preset = "auto"`` stands for, once the provider's
            metadata has chosen it (ignored for a named preset).
        """
        name = preset if settings.preset == "auto" and preset else settings.preset
        base = preset_named(name)
        chosen = {
            key: getattr(settings, key) if getattr(settings, key) is not None else base[key]
            for key in (*_SINGLE, *_MULTI)
        }
        attributes = {**base["attributes"], **settings.attributes}
        split = {**base["split"], **settings.split}
        return cls(**chosen, attributes=MappingProxyType(attributes), split=MappingProxyType(split))


@dataclass(frozen=True, slots=True)
class DelimitedClaim:
    """A multi-valued claim that arrived as one string holding a usual separator while
    the mapping splits it on nothing: probably a list flattened by the provider."""

    field: str
    path: str
    separator: str
    parts: int

    @property
    def suggestion(self) -> str:
        return f'split = {{ {self.field} = "{self.separator}" }}'


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
        roles=_interned(
            frozenset(_values(claims, mapping.roles, mapping.split.get("roles"), "roles"))
        ),
        groups=_interned(
            frozenset(
                normalise_group(g)
                for g in _values(claims, mapping.groups, mapping.split.get("groups"), "groups")
            )
        ),
        # Scopes are space-separated (RFC 6749 §3.3) unless the mapping says otherwise.
        scopes=_interned(
            frozenset(_values(claims, mapping.scopes, mapping.split.get("scopes", " ")))
        ),
        attributes=MappingProxyType(
            {
                name: tuple(_values(claims, (path,), mapping.split.get(name), numbers=True))
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


def delimited_claims(claims: Mapping[str, Any], mapping: ClaimMapping) -> list[DelimitedClaim]:
    """The roles, groups and scopes claims that arrived as one string holding ``;`` or ``,``
    while the mapping does not split them (pure; for ``ssoio doctor`` and the log)."""
    found: list[DelimitedClaim] = []
    for name in _MULTI:
        if name in mapping.split:
            continue
        for path in getattr(mapping, name):
            try:
                value = _lookup(claims, path)
            except ClaimsInvalid:
                continue
            separator = _separator_in(value) if isinstance(value, str) else None
            if isinstance(value, str) and separator is not None:
                parts = len(_split(value, separator))
                found.append(DelimitedClaim(name, path, separator, parts))
    return found


def _separator_in(value: str) -> str | None:
    return next((s for s in _USUAL_SEPARATORS if s in value), None)


_warned: list[DelimitedClaim] = []  # the first one seen, logged once per process


def _warn_once(field: str, path: str, value: str) -> None:
    """A roles or groups claim that arrived as one string with a usual separator in it,
    while the mapping does not split it: logged once per process (found while mapping, so
    a well-configured node pays nothing for the check)."""
    separator = _separator_in(value)
    if separator is None or _warned:
        return
    first = DelimitedClaim(field, path, separator, len(_split(value, separator)))
    _warned.append(first)
    log.warning(
        "claims.delimited_string field=%s path=%s separator=%r parts=%d: the claim is "
        "one string, taken as one value; if it is a list, add %s to [issuers.claims]",
        first.field, first.path, first.separator, first.parts, first.suggestion,
    )  # fmt: skip


def _values(
    claims: Mapping[str, Any],
    paths: tuple[str, ...],
    separator: str | None = None,
    field: str | None = None,
    *,
    numbers: bool = False,
) -> list[str]:
    """The values at ``paths``; ``field`` (roles, groups) is watched for delimited strings
    the mapping does not split."""
    values: list[str] = []
    for path in paths:
        value = _lookup(claims, path)
        if value is None:
            continue
        if isinstance(value, str):
            # A lone role or group arrives as a bare string from some providers (ADFS, Okta
            # group claims); a delimited one only where the mapping names its separator.
            if separator is None and field is not None and not _warned:
                _warn_once(field, path, value)
            values.extend(_split(value, separator))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            if separator is None:
                values.extend(value)
            else:
                values.extend(v for item in value for v in _split(item, separator))
        elif numbers and isinstance(value, int) and not isinstance(value, bool):
            values.append(str(value))  # attributes may be numeric ids, such as a tenant number
        else:
            raise ClaimsInvalid(f"claim {path} is not a string or a list of strings", claim=path)
        if len(values) > _MAX_VALUES or any(len(v) > _MAX_LENGTH for v in values):
            raise ClaimsInvalid(f"claim {path} has too many or too long values", claim=path)
    return values


def _split(value: str, separator: str | None) -> list[str]:
    if separator is None:
        return [value]
    if separator == " ":
        return value.split()
    return [part.strip() for part in value.split(separator) if part.strip()]


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
