"""Small HTML pages for people (login errors), escaped and locked down."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

__all__ = ["SECURITY_HEADERS", "error_page"]

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def error_page(status: int, code: str, message: str) -> HTMLResponse:
    """A plain page that says what went wrong, with a stable code; never a stack trace."""
    body = (
        "<!doctype html><html><head><meta charset=utf-8><title>Sign-in problem</title></head>"
        "<body style='font-family:sans-serif;max-width:40em;margin:4em auto'>"
        f"<h1>Sign-in problem</h1><p>{escape(message)}</p>"
        f"<p><code>{escape(code)}</code></p><p><a href='/auth/login'>Sign in again</a></p>"
        "</body></html>"
    )
    return HTMLResponse(body, status, headers=SECURITY_HEADERS)
