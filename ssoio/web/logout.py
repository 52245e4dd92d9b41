"""Every way a browser session ends, and the sockets that end with it.

::

    POST /auth/logout                 the person signs out here (then RP-initiated logout at
                                      the provider: OIDC RP-Initiated Logout 1.0 §2-§3)
    POST /auth/backchannel-logout     the provider ends sessions server to server (OIDC
                                      Back-Channel Logout 1.0 §2.5-§2.8)
    GET  /auth/frontchannel-logout    the provider's logout page loads this in an iframe
                                      (OIDC Front-Channel Logout 1.0 §2-§4)

A session also ends at ``login.session_max_age_s`` (the gateway's timers) and when the
provider refuses its refresh token (``auth.py``). However it ends, the session is deleted
from the store first (so no node admits a token handed to it any more), then every socket
opened with its cookie or with a token ``/auth/token`` handed to it is told
``auth:revoked {code: "logged_out"}`` and disconnected, on every node.
"""

from __future__ import annotations

import hmac
import secrets
from html import escape
from typing import Any, Protocol

from cachetools import TTLCache
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ssoio.clock import Clock
from ssoio.config.model import Settings
from ssoio.errors import (
    ClusterUnavailable,
    InvalidPayload,
    OriginDenied,
    RateLimited,
    SsoioError,
    TokenMissing,
)
from ssoio.oidc.id_tokens import check_logout_token_claims, verify_signed
from ssoio.oidc.providers import IdentityProviders
from ssoio.realtime.gateway import Gateway
from ssoio.realtime.origins import origin_of
from ssoio.realtime.seams import LimiterFactory
from ssoio.responses import NO_STORE, error_response
from ssoio.web.headers import sender_origin
from ssoio.web.oidc_client import LoginClient
from ssoio.web.sessions import CookieRules, SessionCookies, SessionStore, WebSession
from ssoio.web.throttle import AddressLimit

__all__ = ["LOGOUT_COOKIE", "Logouts", "ReplayCache", "same_text"]

LOGOUT_COOKIE = "ssoio_logout"  # the RP-initiated logout's `state`, until the browser returns
_NOT_POST = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ReplayCache(Protocol):
    async def first_use(self, issuer: str, jti: str) -> bool | None: ...


class Logouts:
    """Ending the login issuer's browser sessions, for one node.

    :param shared_limits: per-address limits shared by a cluster's nodes.
    :param replay: logout-token ``jti``s seen by any node of a cluster.
    """

    def __init__(
        self, settings: Settings, client: LoginClient, providers: IdentityProviders,
        gateway: Gateway, store: SessionStore, cookies: SessionCookies, clock: Clock, *,
        shared_limits: LimiterFactory | None = None, replay: ReplayCache | None = None,
    ) -> None:  # fmt: skip
        self.login = settings.login
        self.client = client
        self.providers = providers
        self.gateway = gateway
        self.observe = gateway.observe
        self.store = store
        self.cookies = cookies
        self.clock = clock
        limits = settings.limits
        self.logout_limit = AddressLimit(
            "logouts", limits.logouts_per_ip, clock, limits.max_tracked_keys, shared_limits
        )
        # BCL 1.0 §2.6 step 7 (optional, done here): a logout token's jti is used once
        self.replay = replay  # shared by a cluster's nodes
        self._seen_jti: TTLCache[tuple[str, str], bool] = TTLCache(
            maxsize=100_000, ttl=settings.login.logout_token_max_age_s * 2, timer=clock
        )
        self.state_cookie = StateCookie(CookieRules.of(settings))
        base = settings.server.public_url.rstrip("/")
        self.post_logout_uri = f"{base}{settings.login.post_logout_path}"
        self.frontchannel_uri = f"{base}/auth/frontchannel-logout"

    def routes(self) -> list[Route]:
        return [
            Route("/auth/logout", self.logout_route, methods=["POST"]),
            Route("/auth/backchannel-logout", self.backchannel_route, methods=["POST"]),
            Route("/auth/backchannel-logout", self.backchannel_misused, methods=_NOT_POST),
            Route("/auth/frontchannel-logout", self.frontchannel_route, methods=["GET"]),
        ]

    # -- ending a session ---------------------------------------------------------------------

    async def end(self, session: WebSession, code: str, how: str) -> int:
        """Delete ``session`` and disconnect its sockets everywhere; the number disconnected."""
        await self.store.delete(session.id)  # first: no node admits its tokens any more
        sockets = await self.gateway.disconnect_web_session(session.id, code)
        if session.idp_session and session.issuer:
            sockets += await self.gateway.disconnect_session(
                session.issuer, session.idp_session, code
            )
        self.observe(
            "auth.logout", how=how, issuer=session.issuer, sub=session.subject, sockets=sockets
        )
        return sockets

    async def end_sessions(
        self, how: str, *, sid: str | None, sub: str | None, sid_less: bool = False
    ) -> int:
        """End the login issuer's sessions of IdP session ``sid`` (else of user ``sub``;
        with ``sid_less``, only those whose ID token carried no ``sid``)."""
        issuer = self.client.issuer.name
        found = await self.store.find(issuer, idp_session=sid, subject=sub if not sid else None)
        ended = 0
        for session_id in found:
            session = await self.store.load(session_id)
            if session is not None and not (sid_less and session.idp_session):
                await self.end(session, "logged_out", how)
                ended += 1
        return ended

    # -- POST /auth/logout ----------------------------------------------------------------------

    async def logout_route(self, request: Request) -> Response:
        """CSRF-safe: the cookie is SameSite=Lax (never sent on cross-site POSTs) and the
        request must come from an allowed origin (OWASP "verify origin with headers")."""
        origin = sender_origin(request)
        if origin is None or not self.gateway.origins.allows(origin):
            return error_response(OriginDenied("log out from this site's own pages"))
        session = await self.session_of(request)
        target, state = f"{self.post_logout_uri}?logout=done", None
        if session is not None:
            await self.end(session, "logged_out", "local")
            state = secrets.token_urlsafe(24)
            at_provider = await self.client.end_session_url(
                session.id_token, self.post_logout_uri, state
            )
            if at_provider is None:  # no end_session_endpoint: the page says what that means
                target, state = f"{self.post_logout_uri}?logout=local", None
            else:
                target = at_provider
        if "application/json" in request.headers.get("accept", ""):
            response: Response = JSONResponse({"ok": True, "redirect": target}, headers=NO_STORE)
        else:
            response = RedirectResponse(target, status_code=303, headers=NO_STORE)
        response.headers["set-cookie"] = self.cookies.header(None)
        if state is not None:  # checked when the provider sends the browser back
            response.headers.append("set-cookie", self.state_cookie.header(state))
        return response

    async def session_of(self, request: Request) -> WebSession | None:
        session_id = self.cookies.unsign(request.cookies.get(self.cookies.name))
        return await self.store.load(session_id) if session_id else None

    # -- back-channel -----------------------------------------------------------------------------

    async def backchannel_route(self, request: Request) -> Response:
        """BCL 1.0 §2.8: 200 when the logout succeeded, 400 when the request is invalid."""
        try:
            form = await request.form()
            claims = await self._logout_claims(form.get("logout_token"))
        except (SsoioError, ValueError) as error:
            code = error.code if isinstance(error, SsoioError) else "invalid_request"
            self.observe("auth.backchannel.refused", code=code)
            body = {"error": "invalid_request", "error_description": code}
            return JSONResponse(body, 400, headers=NO_STORE)
        issuer = self.client.issuer.name
        sid, sub = claims.get("sid"), claims.get("sub")
        # Sockets first: even when the session store cannot be reached, the user's live
        # connections end now; the answer then says the logout was not complete (503).
        sockets = await self.gateway.disconnect_session(issuer, sid, "logged_out") if sid else 0
        if sub and not sid:
            sockets += await self.gateway.disconnect_user(sub, "logged_out", issuer)
        try:
            ended = await self.end_sessions("backchannel", sid=sid, sub=sub)
        except ClusterUnavailable as error:
            self.observe("auth.backchannel.logout", issuer=issuer, sub=sub, sockets=sockets,
                         code=error.code)  # fmt: skip
            return error_response(error)
        self.observe(
            "auth.backchannel.logout", issuer=issuer, sub=sub, sessions=ended, sockets=sockets
        )
        return Response(status_code=200, headers=NO_STORE)

    async def backchannel_misused(self, request: Request) -> Response:
        """A provider configured with the back-channel URL as its front-channel one (a GET
        from the browser's iframe): say where the front-channel endpoint is, and log it."""
        self.observe("auth.backchannel.refused", code="method_not_allowed",
                     method=request.method[:16])  # fmt: skip
        body = {
            "error": "method_not_allowed",
            "error_description": "back-channel logout is a POST of a logout_token (OpenID "
            "Connect Back-Channel Logout 1.0 §2.5); for front-channel logout use the URL below",
            "frontchannel_logout_uri": self.frontchannel_uri,
        }
        return JSONResponse(body, 405, headers={**NO_STORE, "Allow": "POST"})

    async def _logout_claims(self, token: object) -> dict[str, Any]:
        refused = ("at+jwt", "id_token+jwt")
        claims = await verify_signed(token, self.providers.keys, self.client.issuer, refused)
        expected = self.client.expectations(self.login.logout_token_max_age_s)
        check_logout_token_claims(claims, expected, self.clock())
        if not await self._first_use(claims["iss"], claims["jti"]):
            raise TokenMissing("this logout token was already used")
        return claims

    async def _first_use(self, issuer: str, jti: str) -> bool:
        # With a cluster, the jti is checked in Redis (any node may receive the token);
        # when Redis cannot tell, this node's memory still refuses local replays rather
        # than refusing the logout itself.
        shared = await self.replay.first_use(issuer, jti) if self.replay else None
        local = (issuer, jti) not in self._seen_jti
        self._seen_jti[(issuer, jti)] = True
        return local if shared is None else shared and local

    # -- front-channel ----------------------------------------------------------------------------

    async def frontchannel_route(self, request: Request) -> Response:
        """FCL 1.0 §2-§4: end the sessions of the provider's ``sid`` (``iss`` and ``sid``
        given), or, when the provider sends neither, the browser's own session (its cookie).

        Never redirects (§4: the answer is rendered in the provider's iframe); may be framed
        by the provider's origins only; a request that matches no session changes nothing.
        """
        ancestors = self.provider_origins()
        if not await self.logout_limit.allow(request):  # (no log line: it would amplify)
            return _logout_page(429, RateLimited(), ancestors)
        try:
            self._check_sender(request, ancestors)
            ended, sockets, cookie = await self._frontchannel(request)
        except SsoioError as error:
            self.observe("auth.frontchannel.refused", code=error.code)
            status = 503 if isinstance(error, ClusterUnavailable) else 400
            return _logout_page(403 if isinstance(error, OriginDenied) else status, error,
                                ancestors)  # fmt: skip
        self.observe("auth.frontchannel.logout", issuer=self.client.issuer.name,
                     sessions=ended, sockets=sockets)  # fmt: skip
        response = _logout_page(200, None, ancestors)
        if cookie:
            response.headers["set-cookie"] = self.cookies.header(None)
        return response

    async def _frontchannel(self, request: Request) -> tuple[int, int, bool]:
        """(sessions ended, sockets disconnected, whether the cookie's session ended)."""
        iss, sid = request.query_params.get("iss"), request.query_params.get("sid")
        if iss is not None or sid is not None:
            # §2: "If either one is included, both MUST be"
            if not iss or not sid:
                raise InvalidPayload("iss and sid go together")
            if not same_text(iss, self.client.issuer.issuer):
                raise InvalidPayload("the logout request is from another issuer")
            issuer = self.client.issuer.name
            sockets = await self.gateway.disconnect_session(issuer, sid, "logged_out")
            ended = await self.end_sessions("frontchannel", sid=sid, sub=None)
            if not ended and self._from_provider(request):
                # LemonLDAP::NG 2.16 writes no sid in its ID tokens and sends the user's
                # sub as the front-channel sid: believed only from the provider's own page
                ended = await self.end_sessions("frontchannel", sid=None, sub=sid, sid_less=True)
            return ended, sockets, False
        if self.login.frontchannel_logout_session_required:
            raise InvalidPayload("this endpoint needs iss and sid (login."
                                 "frontchannel_logout_session_required)")  # fmt: skip
        session = await self.session_of(request)
        if session is None:
            return 0, 0, False
        return 1, await self.end(session, "logged_out", "frontchannel"), True

    def _from_provider(self, request: Request) -> bool:
        seen = sender_origin(request)
        return seen is not None and seen in self.provider_origins()

    def _check_sender(self, request: Request, providers: list[str]) -> None:
        """Refuse a request that shows it comes from a cross-site page other than the
        provider's (Fetch Metadata; the Origin, else the Referer): a stranger's page may
        not sign people out. A cookie-only request (no ``iss``/``sid``) must also show it
        comes from the provider, since a top-level navigation carries the Lax cookie."""
        if request.headers.get("sec-fetch-site") != "cross-site":
            return  # same-origin, same-site, a direct visit, or a client without metadata
        seen = sender_origin(request)
        if seen is not None and seen in providers:
            return
        if seen is None and "sid" in request.query_params:
            return  # the provider's page may send no referrer; the sid is the proof
        raise OriginDenied("front-channel logout comes from the identity provider's page")

    def provider_origins(self) -> list[str]:
        """The login issuer's origins (its identifier, its published endpoints): the only
        pages that may frame the front-channel answer."""
        metadata = self.client.metadata
        urls = [self.client.issuer.issuer]
        if metadata is not None:
            urls += [metadata.authorization_endpoint or "", metadata.end_session_endpoint or ""]
        return sorted({origin_of(url) for url in urls if url})


class StateCookie:
    """The ``state`` of an RP-initiated logout (RP-Initiated Logout 1.0 §2: the provider
    returns it to ``post_logout_redirect_uri``), kept by the browser until it is back."""

    MAX_AGE = 600

    def __init__(self, rules: CookieRules) -> None:
        self.rules = rules
        self.name = rules.name(LOGOUT_COOKIE)

    def header(self, state: str | None) -> str:
        return self.rules.header(self.name, state or "", self.MAX_AGE if state else 0)

    def matches(self, request: Request) -> bool:
        given, kept = request.query_params.get("state"), request.cookies.get(self.name)
        return bool(given and kept) and same_text(str(given), str(kept))


def _logout_page(status: int, error: SsoioError | None, ancestors: list[str]) -> HTMLResponse:
    """The tiny page rendered in the provider's iframe: no script, no resources."""
    text = "Signed out." if error is None else f"Not signed out ({error.code})."
    frame = " ".join(ancestors) or "'none'"
    headers = {
        **NO_STORE,
        # CSP 3 §6.4.2: framed by the provider's pages only (browsers then ignore the
        # X-Frame-Options: DENY that every other answer carries, HTML §7.1.1.2)
        "Content-Security-Policy": f"default-src 'none'; frame-ancestors {frame}",
    }
    body = f"<!doctype html><meta charset=utf-8><title>ssoio</title><p>{escape(text)}</p>"
    return HTMLResponse(body, status, headers=headers)


def same_text(given: str, expected: str) -> bool:
    """Constant-time equality of two strings (as bytes: compare_digest refuses non-ASCII)."""
    return hmac.compare_digest(given.encode(), expected.encode())
