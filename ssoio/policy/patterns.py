"""Room names and room patterns (pure parsing, shared by config validation and policy).

A room name is a string of ``:``-separated, non-empty segments (``tenant:acme:general``).
A pattern has the same shape; each of its segments is one of:

* a literal, which must be equal (case-sensitive, no normalisation);
* ``*``, which matches any one segment;
* ``{name}``, a placeholder: one segment equal to one of the principal's values for
  ``name`` (``sub``, ``username``, ``email``, ``groups``, ``roles`` or a mapped attribute),
  percent-encoded by ``principal.encode_segment`` so a value can never span segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MAX_ROOM_LENGTH",
    "Pattern",
    "Segment",
    "parse_pattern",
    "room_name_problem",
]

MAX_ROOM_LENGTH = 200
_MAX_SEGMENTS = 16
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]{0,31})\}")
# any white space or reserved character; one scan, not one Python step per character
_REFUSED_CHARACTER = re.compile(r"[\s*{}]")


@dataclass(frozen=True, slots=True)
class Segment:
    """One pattern segment: a literal, a wildcard (``*``) or a placeholder name."""

    literal: str | None = None
    placeholder: str | None = None

    @property
    def wildcard(self) -> bool:
        return self.literal is None and self.placeholder is None


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    segments: tuple[Segment, ...]

    @property
    def has_wildcard(self) -> bool:
        return any(s.wildcard for s in self.segments)

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(s.placeholder for s in self.segments if s.placeholder)


def room_name_problem(name: object) -> str | None:
    """Why ``name`` is not an acceptable room name, or ``None`` when it is."""
    if not isinstance(name, str):
        return "a room name is a string"
    if not 0 < len(name) <= MAX_ROOM_LENGTH:
        return f"a room name has 1 to {MAX_ROOM_LENGTH} characters"
    if not name.isprintable() or _REFUSED_CHARACTER.search(name):
        return "a room name has no spaces, control characters, '*', '{' or '}'"
    segments = name.split(":")
    if "" in segments or len(segments) > _MAX_SEGMENTS:
        return f"a room name has 1 to {_MAX_SEGMENTS} non-empty ':'-separated segments"
    return None


def parse_pattern(text: str) -> Pattern:
    """Parse a room pattern.

    :raises ValueError: naming what is wrong.
    """
    if not 0 < len(text) <= MAX_ROOM_LENGTH:
        raise ValueError(f"a room pattern has 1 to {MAX_ROOM_LENGTH} characters")
    parts = text.split(":")
    if "" in parts or len(parts) > _MAX_SEGMENTS:
        raise ValueError(f"a room pattern has 1 to {_MAX_SEGMENTS} non-empty segments")
    return Pattern(text, tuple(_segment(part) for part in parts))


def _segment(part: str) -> Segment:
    if part == "*":
        return Segment()
    match = _PLACEHOLDER.fullmatch(part)
    if match:
        return Segment(placeholder=match.group(1))
    if room_name_problem(part) is not None:
        raise ValueError(
            f"segment {part!r} must be '*', a whole '{{placeholder}}' or a literal "
            "without spaces, '*', '{' or '}'"
        )
    return Segment(literal=part)
