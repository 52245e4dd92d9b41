"""The ``Principal``: who is on the other end of a connection, as the policy sees it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["Principal", "encode_segment"]

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
