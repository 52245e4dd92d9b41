"""The development provider's HTML pages; each one says DEVELOPMENT ONLY at the top.

Self-contained (no scripts, fonts or images, so they work offline) and framed by no one
(``frame-ancestors 'none'``: a sign-in page must not be clickjacked, even a dev one).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from starlette.responses import HTMLResponse

from ssoio.devidp.users import DevUser

__all__ = ["error_page", "login_page", "logout_confirm_page", "signed_out_page"]

BANNER = "DEVELOPMENT ONLY"
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}"
    ".dev{background:#b00020;color:#fff;padding:.75rem 1rem;font-weight:700;"
    "letter-spacing:.05em}button{font-size:1rem;padding:.4rem .9rem;margin:.2rem 0}"
    "td{padding:.3rem .6rem;vertical-align:top}.error{color:#b00020}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} - ssoio dev IdP ({BANNER})</title><style>{_STYLE}</style>"
        f'</head><body>\n<p class="dev" role="alert">{BANNER}: ssoio\'s built-in '
        "identity provider. Anyone can sign in as anyone, without a password. "
        "Never use it for real users.</p>\n"
        f"<h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def login_page(
    action: str,
    request: dict[str, str],
    client_name: str,
    scope: str,
    users: Iterable[DevUser],
    error: str | None = None,
) -> HTMLResponse:
    """Pick a user; the chosen button POSTs ``username`` and the authorization ``request``
    back to the authorization endpoint."""
    rows = "\n".join(_user_row(user, scope) for user in users)
    problem = f'<p class="error" role="alert">{escape(error)}</p>\n' if error else ""
    body = (
        f"{problem}<p>{escape(client_name)} asks to sign you in "
        f"(scope <code>{escape(scope or '(none)')}</code>). Consent is granted "
        "automatically.</p>\n"
        f'<form method="post" action="{escape(action)}">{_hidden(request)}\n<table>\n'
        "<tr><th>sign in as</th><th>roles</th><th>groups</th><th>tenant</th>"
        f"<th>granted scope</th></tr>\n{rows}\n</table>\n</form>"
    )
    return _page("Sign in", body, status=400 if error else 200)


def _user_row(user: DevUser, scope: str) -> str:
    cells = (
        ", ".join(user.roles) or "-",
        ", ".join(user.groups) or "-",
        user.tenant,
        user.entitled(scope) or "-",
    )
    button = (
        f'<button type="submit" name="username" value="{escape(user.username)}">'
        f"{escape(user.name)} ({escape(user.username)})</button>"
    )
    return f"<tr><td>{button}</td>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"


def error_page(error: str, description: str, status: int = 400) -> HTMLResponse:
    body = f'<p class="error"><strong>{escape(error)}</strong>: {escape(description)}</p>'
    return _page("Error", body, status)


def logout_confirm_page(action: str, fields: dict[str, str]) -> HTMLResponse:
    """RP-Initiated Logout 1.0 §6: without an ``id_token_hint``, ask the user first."""
    body = (
        f'<form method="post" action="{escape(action)}">{_hidden(fields)}'
        '<button type="submit" name="confirm" value="yes">Sign out</button></form>'
    )
    return _page("Sign out of the development IdP?", body)


def _hidden(fields: dict[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )


def signed_out_page() -> HTMLResponse:
    return _page("Signed out", "<p>You are signed out of the development IdP.</p>")
