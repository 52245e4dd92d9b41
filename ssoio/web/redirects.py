"""Where a login may send the browser afterwards: same-origin relative paths only."""

from __future__ import annotations

__all__ = ["safe_next"]

_MAX_LENGTH = 2000


def safe_next(value: object) -> str:
    """``value`` when it is a same-origin relative path, else ``"/"``.

    Refused (open redirects): absolute URLs and schemes (``https://x``, ``javascript:``),
    scheme-relative ``//host``, backslashes (browsers read ``/\\host`` as ``//host``),
    control characters and whitespace (browsers strip tabs and newlines, turning
    ``/\\t/host`` into ``//host``), and anything not starting with ``/``.
    """
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_LENGTH:
        return "/"
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "/"
    return value
