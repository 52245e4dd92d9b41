"""Security headers on every HTTP response ssoio sends."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ssoio.realtime.origins import origin_of

__all__ = ["FORM_PAGE", "SecurityHeaders", "sender_origin"]

_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
# A page with a form that POSTs to ssoio: under "no-referrer" browsers send `Origin: null`
# with its POSTs (Fetch §3.2.5), which the CSRF checks refuse; "same-origin" sends the
# page's origin to ssoio itself and nothing to anyone else.
FORM_PAGE = {"Referrer-Policy": "same-origin"}
# RFC 6797: browsers remember to use https only; a year, subdomains included.
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """ASGI middleware adding headers a response did not set itself (HSTS on https)."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = [*_ALWAYS, _HSTS] if https else list(_ALWAYS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def sender_origin(request: Request) -> str | None:
    """The origin of the page that sent ``request``: its ``Origin`` header, else its
    ``Referer``'s origin (OWASP "verify origin with standard headers"); None when it says
    neither."""
    referer = request.headers.get("referer")
    return request.headers.get("origin") or (origin_of(referer) if referer else None)
