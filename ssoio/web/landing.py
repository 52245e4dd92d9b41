"""``GET /``: the landing page of ``ssoio serve`` (or a redirect to ``login.landing_url``).

Where sign-in (``next=/``) and sign-out (``login.post_logout_path``, default ``/``) end: it
says whether this browser is signed in and as whom, links to sign in and out, and, after an
RP-initiated logout, whether the provider's answer carried the ``state`` this browser was
given (RP-Initiated Logout 1.0 §2-§3). No script, no third-party resource, a strict CSP.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ssoio.errors import SsoioError
from ssoio.policy.principal import Principal
from ssoio.responses import NO_STORE
from ssoio.web.auth import BrowserLogin
from ssoio.web.headers import FORM_PAGE

__all__ = ["landing_routes"]

_SIGNED_OUT = {
    "done": "You are signed out.",
    "local": "You are signed out of this site. Your identity provider offers no way to sign "
    "out there from here: sign out at the provider too, or close the browser.",
}
_STATE_MISMATCH = (
    "This sign-out confirmation was not meant for this browser. If you signed out, you may "
    "still be signed in at your identity provider."
)


def landing_routes(login: BrowserLogin) -> list[Route]:
    """The ``GET /`` route of ``ssoio serve``."""

    async def landing(request: Request) -> Response:
        notice, confirmed = _returned_from_logout(login, request)
        if login.login.landing_url:
            response: Response = RedirectResponse(login.login.landing_url, 303, headers=NO_STORE)
        else:
            principal = await _signed_in(login, request)
            response = _page(principal, notice, login.logouts.provider_origins())
        if confirmed:  # one use (a forged state cannot spend it)
            response.headers.append("set-cookie", login.logouts.state_cookie.header(None))
        return response

    return [Route("/", landing, methods=["GET"])]


def _returned_from_logout(login: BrowserLogin, request: Request) -> tuple[str | None, bool]:
    """(what to tell the person, whether the provider confirmed this browser's logout)."""
    if "state" in request.query_params:
        if not login.logouts.state_cookie.matches(request):
            login.observe("auth.logout.refused", code="state_invalid")
            return _STATE_MISMATCH, False
        return _SIGNED_OUT["done"], True
    return _SIGNED_OUT.get(request.query_params.get("logout") or ""), False


async def _signed_in(login: BrowserLogin, request: Request) -> Principal | None:
    session = await login.logouts.session_of(request)
    if session is None or not session.authenticated:
        return None
    try:
        token = await login.fresh_access_token(session)
        if token is None:
            return None
        verified = await login.providers.verifier.verify(token)
    except SsoioError:
        return None
    return login.policy.principal_from_claims(verified.claims, verified.issuer.name)


def _page(principal: Principal | None, notice: str | None, providers: list[str]) -> HTMLResponse:
    parts = [f"<p role=status>{escape(notice)}</p>"] if notice else []
    if principal is None:
        parts.append("<p>You are not signed in.</p>"
                     "<p><a id=signin href='/auth/login?next=/'>Sign in</a></p>")  # fmt: skip
    else:
        who = principal.name or principal.username or principal.subject
        parts.append(
            f"<p>Signed in as <b id=who>{escape(who)}</b> (<code>{escape(principal.subject)}"
            f"</code>, {escape(principal.issuer)}).</p>"
            "<form method=post action='/auth/logout'><button id=signout>Sign out</button></form>"
        )
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>ssoio</title></head>"
        "<body style='font-family:sans-serif;max-width:40em;margin:4em auto'><h1>ssoio</h1>"
        f"{''.join(parts)}</body></html>"
    )
    # form-action covers the redirect to the provider's end-session endpoint (CSP 3 §6.3.1)
    targets = " ".join(["'self'", *providers])
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        f"frame-ancestors 'none'; form-action {targets}"
    )
    return HTMLResponse(body, headers={**NO_STORE, **FORM_PAGE, "Content-Security-Policy": csp})
