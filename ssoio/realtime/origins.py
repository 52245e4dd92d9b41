"""The Origin allow-list, against cross-site WebSocket hijacking.

A browser always sends ``Origin`` on cross-origin WebSocket and XHR requests; a page of
another site must not be able to open a connection that the browser authenticates with
the user's cookie. The public URL's origin is always allowed. ``X-Forwarded-Host`` is
never trusted to decide what "same origin" means (python-engineio's default does).
Requests without ``Origin`` come from non-browser clients and are not checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["OriginPolicy", "origin_of"]


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower-cased (RFC 6454 §4)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class OriginPolicy:
    """Which web origins may open Socket.IO connections."""

    def __init__(self, public_url: str, allowed: tuple[str, ...]) -> None:
        self.any = "*" in allowed
        self.allowed = frozenset({origin_of(public_url), *(o for o in allowed if o != "*")})

    def allows(self, origin: str | None) -> bool:
        """True for an allowed origin, or no ``Origin`` at all (not a browser)."""
        if origin is None:
            return True
        return self.any or origin.lower() in self.allowed
