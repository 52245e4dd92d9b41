"""Requirements: who may do something, written naturally in TOML, compiled once.

Grammar (a requirement is one of):

* ``"authenticated"`` — any authenticated principal; ``"nobody"`` — no one;
* ``"role:NAME"``, ``"group:NAME"``, ``"scope:NAME"`` — membership (groups compare
  without Keycloak's leading ``/``, so ``group:eng`` and ``group:/eng`` are the same);
* ``"attr:NAME=VALUE"`` — the named attribute has this value;
* ``{ any = [R, ...] }``, ``{ all = [R, ...] }``, ``{ not = R }`` — combinations.

``parse`` validates (raising ``ValueError`` with a readable message, which the config
loader reports at the key's path) and returns a compiled, frozen ``Requirement`` whose
``describe()`` is used in decision reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ssoio.policy.principal import Principal

__all__ = ["Requirement", "normalise_group", "parse"]

_MAX_DEPTH = 8


def normalise_group(group: str) -> str:
    """Keycloak writes group paths (``/eng/backend``); compare them without the outer ``/``."""
    return group.strip("/")


@dataclass(frozen=True, slots=True)
class Requirement:
    """A compiled requirement: ``requirement(principal) -> bool``."""

    test: Callable[[Principal], bool]
    text: str

    def __call__(self, principal: Principal) -> bool:
        return self.test(principal)

    def describe(self) -> str:
        return self.text


def parse(spec: object, depth: int = 0) -> Requirement:
    """Compile a requirement written in configuration.

    :raises ValueError: with a message naming what is wrong.
    """
    if depth > _MAX_DEPTH:
        raise ValueError(f"requirements nest deeper than {_MAX_DEPTH} levels")
    if isinstance(spec, str):
        return _atom(spec)
    if isinstance(spec, dict):
        return _combination(spec, depth)
    if isinstance(spec, list):
        raise ValueError("a list is ambiguous: write { any = [...] } or { all = [...] }")
    raise ValueError(f"a requirement is a string or a table, not {type(spec).__name__}")


def _atom(text: str) -> Requirement:
    if text == "authenticated":
        return Requirement(lambda _p: True, text)
    if text == "nobody":
        return Requirement(lambda _p: False, text)
    kind, sep, value = text.partition(":")
    if not sep or not value.strip():
        raise ValueError(
            f"unknown requirement {text!r}: use authenticated, nobody, role:X, group:X, "
            "scope:X or attr:NAME=VALUE"
        )
    maker = _ATOMS.get(kind)
    if maker is None:
        raise ValueError(f"unknown requirement kind {kind!r} in {text!r}")
    return maker(value, text)


def _role(value: str, text: str) -> Requirement:
    return Requirement(lambda p: value in p.roles, text)


def _group(value: str, text: str) -> Requirement:
    group = normalise_group(value)
    return Requirement(lambda p: group in p.groups, text)


def _scope(value: str, text: str) -> Requirement:
    return Requirement(lambda p: value in p.scopes, text)


def _attr(value: str, text: str) -> Requirement:
    name, sep, expected = value.partition("=")
    if not sep or not name or not expected:
        raise ValueError(f"write attr:NAME=VALUE, not {text!r}")
    return Requirement(lambda p: expected in p.values(name), text)


_ATOMS: dict[str, Callable[[str, str], Requirement]] = {
    "role": _role,
    "group": _group,
    "scope": _scope,
    "attr": _attr,
}


def _combination(spec: dict[str, Any], depth: int) -> Requirement:
    if len(spec) != 1 or next(iter(spec)) not in ("any", "all", "not"):
        raise ValueError("a requirement table has exactly one key: any, all or not")
    ((kind, inner),) = spec.items()
    if kind == "not":
        negated = parse(inner, depth + 1)
        return Requirement(lambda p: not negated(p), f"not {negated.describe()}")
    if not isinstance(inner, list) or not inner:
        raise ValueError(f"{kind} takes a non-empty list of requirements")
    parts = tuple(parse(item, depth + 1) for item in inner)
    text = f"{kind}({', '.join(part.describe() for part in parts)})"
    if kind == "any":
        return Requirement(lambda p: any(part(p) for part in parts), text)
    return Requirement(lambda p: all(part(p) for part in parts), text)
