"""The ``Principal``: who is on the other end of a connection, as the policy sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Principal", "encode_segment", "shares_values"]

_EMPTY: Mapping[str, tuple[str, ...]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated identity, mapped from verified claims; plain, frozen data.

    ``attributes`` holds named claims (such as ``tenant``) as tuples of strings, so a
    multi-valued claim and a single value are handled alike.
    """

    issuer: str
    subject: str
    username: str | None = None
    email: str | None = None
    name: str | None = None
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY)
    session_id: str | None = None
    client_id: str | None = None
    expires_at: float = float("inf")

    def values(self, name: str) -> tuple[str, ...]:
        """The values a placeholder ``{name}`` stands for (empty when there are none)."""
        if name in self.attributes:
            return self.attributes[name]
        if name == "sub":
            return (self.subject,)
        if name in ("username", "email"):
            value = getattr(self, name)
            return (value,) if value else ()
        if name == "groups":
            return tuple(sorted(self.groups))
        if name == "roles":
            return tuple(sorted(self.roles))
        return ()


def shares_values(actor: Principal, target: Principal, names: tuple[str, ...]) -> bool:
    """Whether ``actor`` and ``target`` have a value in common for each of ``names`` (the
    ``same_attributes`` rule of kicks); a principal without a value shares nothing."""
    return all(set(actor.values(name)) & set(target.values(name)) for name in names)


def encode_segment(value: str) -> str:
    """Percent-encode what would let a claim value reach beyond one room-name segment.

    Room names are ``:``-separated segments; a placeholder stands for exactly one
    segment. Encoding ``%``, ``:``, ``*``, ``{``, ``}``, whitespace and non-printable
    characters (as UTF-8 ``%XX``) is injective, so a claim value such as ``acme:x``, ``*``
    or ``Acme Corp`` only ever names its own, literal, valid segment.
    """
    if value.isprintable() and not any(c in _ENCODED or c.isspace() for c in value):
        return value
    return "".join(_encode_char(c) for c in value)


_ENCODED = frozenset("%:*{}")


def _encode_char(char: str) -> str:
    if char in _ENCODED or char.isspace() or not char.isprintable():
        return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return char


def principal_to_dict(principal: Principal) -> dict[str, Any]:
    """Plain JSON for another node (presence, kicks); never any token material."""
    return {
        "issuer": principal.issuer, "subject": principal.subject,
        "username": principal.username, "email": principal.email, "name": principal.name,
        "roles": sorted(principal.roles), "groups": sorted(principal.groups),
        "scopes": sorted(principal.scopes),
        "attributes": {k: list(v) for k, v in principal.attributes.items()},
        "session_id": principal.session_id, "client_id": principal.client_id,
    }  # fmt: skip


def principal_from_dict(data: Mapping[str, Any]) -> Principal:
    """The inverse of ``principal_to_dict`` (for data from another node of the cluster)."""
    attributes = data.get("attributes") or {}
    return Principal(
        issuer=str(data["issuer"]), subject=str(data["subject"]),
        username=data.get("username"), email=data.get("email"), name=data.get("name"),
        roles=frozenset(data.get("roles") or ()), groups=frozenset(data.get("groups") or ()),
        scopes=frozenset(data.get("scopes") or ()),
        attributes=MappingProxyType({str(k): tuple(v) for k, v in attributes.items()}),
        session_id=data.get("session_id"), client_id=data.get("client_id"),
    )  # fmt: skip
