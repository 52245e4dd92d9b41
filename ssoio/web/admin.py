"""``/admin/access``: ``ssoio explain`` as a page, for operators.

::

    GET  /admin/access   the signed-in operator's own principal, and a form
    POST /admin/access   the same, plus, for a pasted access token (verified as a connect
                         would) or pasted claims (JSON, mapped through a chosen issuer):
                         the principal, the claim paths the mapping found empty, and the
                         decision with its reason for every room rule and event rule

Only people signed in through the browser flow who meet ``admin.requires`` (default
``role:admin``) see it; others get 403, the signed-out a redirect to sign in. The POST is
CSRF-safe: an allowed ``Origin`` (or ``Referer``) and a form token bound to the session.
Server-side rendered, no script, no third-party resource, a strict CSP; everything shown
is escaped. Nothing pasted is stored or logged: the audit line names the operator and
what kind of thing was asked about, never its content.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ssoio.errors import InvalidPayload, SsoioError
from ssoio.policy.access import access_table
from ssoio.policy.mapping import empty_claim_paths
from ssoio.policy.principal import Principal
from ssoio.policy.requirements import parse
from ssoio.responses import NO_STORE
from ssoio.web.auth import BrowserLogin
from ssoio.web.headers import FORM_PAGE, sender_origin
from ssoio.web.sessions import WebSession, effective_secret

__all__ = ["admin_routes"]

_MAX_CLAIMS_CHARS = 65536
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_STYLE = (
    "body{font-family:sans-serif;max-width:70em;margin:2em auto}td,th{padding:.2em .6em;"
    "text-align:left;vertical-align:top}.deny{color:#a00}.allow{color:#070}"
    "textarea{width:100%;font-family:monospace}"
)


class AdminAccess:
    """The page's routes, over the node's browser login (sessions, verifier, policy)."""

    def __init__(self, login: BrowserLogin) -> None:
        self.login = login
        self.requires = parse(login.settings.admin.requires)
        key = f"ssoio-admin-access:{effective_secret(login.settings)}".encode()
        self._csrf_key = hashlib.sha256(key).digest()

    def routes(self) -> list[Route]:
        return [Route("/admin/access", self.page, methods=["GET", "POST"])]

    async def page(self, request: Request) -> Response:
        session = await self.login.logouts.session_of(request)
        operator = await self._principal_of(session)
        if session is None or operator is None:
            return RedirectResponse("/auth/login?next=/admin/access", 303, headers=NO_STORE)
        if not self.requires(operator):
            self.login.observe("admin.access.refused", sub=operator.subject, code="forbidden")
            return _html(403, "<h1>Forbidden</h1><p>This page is for administrators.</p>"
                         "<p><code>forbidden</code></p>")  # fmt: skip
        result = ""
        if request.method == "POST":
            if not self._same_site(request) or not await self._csrf_ok(request, session):
                return _html(403, "<h1>Forbidden</h1><p>Submit the form from this page.</p>"
                             "<p><code>origin_denied</code></p>")  # fmt: skip
            result = await self._answer(request, operator)
        return _html(200, self._body(operator, session, result))

    # -- who is asking ----------------------------------------------------------------------

    async def _principal_of(self, session: WebSession | None) -> Principal | None:
        if session is None or not session.authenticated:
            return None
        try:
            token = await self.login.fresh_access_token(session)
            verified = await self.login.providers.verifier.verify(token)
        except SsoioError:
            return None
        return self.login.policy.principal_from_claims(verified.claims, verified.issuer.name)

    def _same_site(self, request: Request) -> bool:
        origin = sender_origin(request)
        return origin is not None and self.login.gateway.origins.allows(origin)

    def _csrf(self, session: WebSession) -> str:
        mac = hmac.new(self._csrf_key, session.id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    async def _csrf_ok(self, request: Request, session: WebSession) -> bool:
        given = (await request.form()).get("csrf")
        expected = self._csrf(session)
        return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())

    # -- the question -----------------------------------------------------------------------

    async def _answer(self, request: Request, operator: Principal) -> str:
        form = await request.form()
        token, claims_text = str(form.get("token") or "").strip(), str(form.get("claims") or "")
        kind = "token" if token else "claims"
        try:
            if token:
                verified = await self.login.providers.verifier.verify(token)
                claims, issuer = dict(verified.claims), verified.issuer.name
            else:
                default = self.login.client.issuer.name
                claims, issuer = _claims(claims_text), str(form.get("issuer") or default)
            principal = self.login.policy.principal_from_claims(claims, issuer)
        except SsoioError as refusal:
            self.login.observe("admin.access.explain", sub=operator.subject, kind=kind,
                               code=refusal.code)  # fmt: skip
            return (
                f"<h2>Refused</h2><p class=deny><code>{escape(refusal.code)}</code> "
                f"{escape(refusal.message)}</p>"
            )
        self.login.observe("admin.access.explain", sub=operator.subject, kind=kind, code="ok")
        return self._decisions(principal, claims, issuer)

    def _decisions(self, principal: Principal, claims: dict[str, Any], issuer: str) -> str:
        policy = self.login.policy
        empty = empty_claim_paths(claims, policy.mappings[issuer])
        rows = "".join(
            f"<tr><td><code>{escape(row.rule)}</code></td><td>{escape(row.question)}</td>"
            f"<td class={'allow' if row.decision.allowed else 'deny'}>"
            f"{'allowed' if row.decision.allowed else 'denied'}</td>"
            f"<td>{escape(row.decision.reason)}</td></tr>"
            for row in access_table(policy, principal)
        )
        empties = "".join(f"<li><code>{escape(path)}</code></li>" for path in empty)
        return (
            f"<h2>Principal</h2>{_principal(principal)}"
            f"<h2>Claim paths found empty</h2><ul id=empty>{empties or '<li>none</li>'}</ul>"
            "<h2>Decisions</h2><table id=decisions><tr><th>rule</th><th>question</th>"
            f"<th>decision</th><th>reason</th></tr>{rows}</table>"
        )

    def _body(self, operator: Principal, session: WebSession, result: str) -> str:
        issuers = "".join(f"<option>{escape(i.name)}</option>" for i in self.login.settings.issuers)
        return (
            "<h1>Access, as the loaded policy decides it</h1>"
            f"<h2>You</h2>{_principal(operator)}"
            "<h2>Ask about someone</h2><form method=post action='/admin/access'>"
            f"<input type=hidden name=csrf value='{escape(self._csrf(session))}'>"
            "<p><label>An access token (verified as a connect would)<br>"
            "<textarea name=token rows=4 autocomplete=off></textarea></label></p>"
            "<p><label>or claims, as JSON<br><textarea name=claims rows=8></textarea></label>"
            f"<br><label>mapped as issuer <select name=issuer>{issuers}</select></label></p>"
            "<p><button id=ask>Explain</button></p></form>"
            f"<div id=result>{result}</div>"
        )


def _claims(text: str) -> dict[str, Any]:
    if len(text) > _MAX_CLAIMS_CHARS:
        raise InvalidPayload(f"the claims are longer than {_MAX_CLAIMS_CHARS} characters")
    try:
        claims = json.loads(text)
    except ValueError:
        raise InvalidPayload("the claims are not JSON") from None
    if not isinstance(claims, dict):
        raise InvalidPayload("the claims must be one JSON object")
    return claims


def _principal(p: Principal) -> str:
    fields = {
        "sub": p.subject, "issuer": p.issuer, "username": p.username or "-",
        "email": p.email or "-", "roles": ", ".join(sorted(p.roles)) or "-",
        "groups": ", ".join(sorted(p.groups)) or "-", "scopes": ", ".join(sorted(p.scopes)) or "-",
        **{f"attribute {k}": ", ".join(v) or "-" for k, v in sorted(p.attributes.items())},
    }  # fmt: skip
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in fields.items())
    return f"<table class=principal>{rows}</table>"


def _html(status: int, body: str) -> HTMLResponse:
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>ssoio: access</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(
        page, status, headers={**NO_STORE, **FORM_PAGE, "Content-Security-Policy": _CSP}
    )


def admin_routes(login: BrowserLogin) -> list[Route]:
    """``/admin/access`` over ``login``."""
    return AdminAccess(login).routes()
