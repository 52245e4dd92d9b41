"""Browser single sign-on routes: login, callback, token hand-off, me, logout, and
OpenID Connect Back-Channel Logout.

::

    GET  /auth/login?next=/path     start the authorization-code flow (PKCE S256, state,
                                    nonce, kept in the pre-login cookie); rate-limited per
                                    address (limits.logins_per_ip)
    GET  /auth/callback             check state, exchange the code, verify the ID token,
                                    start a fresh session (new id: no fixation)
    GET  /auth/token                the session's access token (refreshed near expiry)
    GET  /auth/me                   the principal as ssoio sees it
    POST /auth/logout               end the session, disconnect its sockets, go to the IdP
    POST /auth/backchannel-logout   the IdP ends sessions (logout_token, BCL 1.0 §2.5)
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Protocol

from cachetools import TTLCache
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ssoio.clock import Clock
from ssoio.config.model import Settings
from ssoio.errors import (
    AuthenticationError,
    ClaimsInvalid,
    ClusterUnavailable,
    IdpUnavailable,
    OriginDenied,
    RateLimited,
    SsoioError,
    TokenMissing,
)
from ssoio.oidc.id_tokens import check_logout_token_claims, verify_signed
from ssoio.oidc.providers import IdentityProviders
from ssoio.oidc.verified import VerifiedToken
from ssoio.policy.engine import Policy
from ssoio.realtime.gateway import Gateway
from ssoio.realtime.origins import origin_of
from ssoio.realtime.seams import LimiterFactory
from ssoio.responses import NO_STORE, error_response
from ssoio.web.oidc_client import GrantRefused, LoginClient
from ssoio.web.pages import error_page
from ssoio.web.pending import PendingLogin, PendingLogins
from ssoio.web.redirects import safe_next
from ssoio.web.sessions import RefreshLocks, SessionCookies, SessionStore, WebSession
from ssoio.web.throttle import AddressLimit

__all__ = ["BrowserLogin"]

log = logging.getLogger(__name__)


class ReplayCache(Protocol):
    async def first_use(self, issuer: str, jti: str) -> bool | None: ...


class BrowserLogin:
    """The login issuer's browser flow, sessions and logout, for one node.

    :param shared_limits: per-address limits shared by a cluster's nodes (sign-ins).
    :param replay: logout-token ``jti``s seen by any node of a cluster.
    """

    def __init__(
        self, settings: Settings, providers: IdentityProviders, policy: Policy,
        gateway: Gateway, store: SessionStore, clock: Clock, *,
        shared_limits: LimiterFactory | None = None, replay: ReplayCache | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.login = settings.login
        self.providers = providers
        self.policy = policy
        self.gateway = gateway
        self.observe = gateway.observe
        self.store = store
        self.clock = clock
        self.cookies = SessionCookies(settings)
        self.cookie_name = self.cookies.name  # (read by the gateway for cookie connects)
        self.pending = PendingLogins(settings, clock)
        self.client = LoginClient(settings, providers, clock)
        limits = settings.limits
        shared = (
            None
            if shared_limits is None
            else lambda local: shared_limits("logins", limits.logins_per_ip, local)
        )
        self.login_limit = AddressLimit(
            limits.logins_per_ip, clock, limits.max_tracked_keys, shared
        )
        self._locks = RefreshLocks()
        # BCL 1.0 §2.6 step 7 (optional, done here): a logout token's jti is used once
        self.replay = replay  # shared by a cluster's nodes
        self._seen_jti: TTLCache[tuple[str, str], bool] = TTLCache(
            maxsize=100_000, ttl=settings.login.logout_token_max_age_s * 2, timer=clock
        )
        base = settings.server.public_url.rstrip("/")
        self.redirect_uri = f"{base}/auth/callback"
        self.post_logout_uri = f"{base}{settings.login.post_logout_path}"

    def routes(self) -> list[Route]:
        return [
            Route("/auth/login", self.login_route, methods=["GET"]),
            Route("/auth/callback", self.callback_route, methods=["GET"]),
            Route("/auth/token", self.token_route, methods=["GET"]),
            Route("/auth/me", self.me_route, methods=["GET"]),
            Route("/auth/logout", self.logout_route, methods=["POST"]),
            Route("/auth/backchannel-logout", self.backchannel_route, methods=["POST"]),
        ]

    # -- the session seam the Socket.IO gateway uses --------------------------------------

    async def resolve(self, cookie_value: str) -> tuple[str, str] | None:
        """(session id, current access token) for a session cookie, or None."""
        session = await self._session(cookie_value)
        if session is None or not session.authenticated:
            return None
        token = await self._fresh_access_token(session)
        return (session.id, token) if token else None

    # -- login ------------------------------------------------------------------------------

    async def login_route(self, request: Request) -> Response:
        """Nothing is stored on the server: the transaction goes into the pre-login cookie
        (``pending.py``), so anonymous logins cost a few random bytes and one encryption."""
        if not await self.login_limit.allow(request):  # (no log line: it would amplify)
            return error_response(RateLimited("too many sign-ins from this address; wait"))
        pending = PendingLogin.start(safe_next(request.query_params.get("next")))
        try:
            url = await self.client.authorization_url(self.redirect_uri, pending)
        except SsoioError as error:
            return error_page(503, error.code, "The identity provider cannot be reached.")
        response = RedirectResponse(url, status_code=302, headers=NO_STORE)
        response.headers["set-cookie"] = self.pending.header(pending)
        return response

    async def callback_route(self, request: Request) -> Response:
        params = request.query_params
        if "error" in params:  # RFC 6749 §4.1.2.1: the provider refused (access_denied...)
            code = _short(params.get("error"))
            self.observe("auth.login.refused", code=code)
            return error_page(400, code, "The identity provider did not sign you in.")
        pending = self.pending.open(request.cookies.get(self.pending.name))
        state = params.get("state")
        # RFC 6749 §10.12: the state must be the one this browser was given. A mismatch
        # leaves the pre-login cookie alone: a forged link cannot cancel a real sign-in.
        if pending is None or not state or not _same(state, pending.state):
            self.observe("auth.login.refused", code="state_invalid")
            return error_page(400, "state_invalid", "This sign-in link is not valid (any more).")
        response = await self._callback(params.get("code"), pending)
        # one use only, whatever happened
        response.headers.append("set-cookie", self.pending.header(None))
        return response

    async def _callback(self, code: str | None, pending: PendingLogin) -> Response:
        try:
            return await self._complete(code, pending)
        except GrantRefused as refused:
            self.observe("auth.login.refused", code="code_rejected", error=_short(refused.error))
            return error_page(400, "code_rejected", "The sign-in could not be completed.")
        except AuthenticationError as error:
            self.observe("auth.login.refused", code=error.code)
            return error_page(400, error.code, "The sign-in response was not valid.")
        except SsoioError as error:
            return error_page(503, error.code, "The identity provider cannot be reached.")

    async def _complete(self, code: str | None, pending: PendingLogin) -> Response:
        if not code:
            raise TokenMissing("the callback carries no code")
        token = await self.client.exchange(code, pending.code_verifier, self.redirect_uri)
        id_claims = await self.client.verify_id_token(token.get("id_token"), pending.nonce)
        verified = await self.providers.verifier.verify(token.get("access_token"))
        if verified.claims.get("sub") != id_claims["sub"]:
            raise TokenMissing("the access token is for another user")
        now = self.clock()
        max_age = self.login.session_max_age_s
        session = WebSession(
            self.cookies.new_id(),
            now,
            now + max_age,
            issuer=verified.issuer.name,
            subject=id_claims["sub"],
            idp_session=_string(id_claims.get("sid")),
            access_token=token["access_token"],
            refresh_token=_string(token.get("refresh_token")),
            id_token=token.get("id_token"),
            access_expires_at=verified.expires_at,
        )
        await self.store.save(session)
        self.observe("auth.login", issuer=session.issuer, sub=session.subject)
        response = RedirectResponse(pending.next_path, status_code=303)
        response.headers["set-cookie"] = self.cookies.header(session.id)
        response.headers["cache-control"] = "no-store"
        return response

    # -- hand-off ---------------------------------------------------------------------------

    async def token_route(self, request: Request) -> Response:
        """The access token for same-origin pages that connect with ``auth.token``."""
        try:
            session, token = await self._current_token(request)
        except SsoioError as error:
            return error_response(error)
        expires_in = max(0, round(session.access_expires_at - self.clock()))
        body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
        return JSONResponse(body, headers=NO_STORE)

    async def me_route(self, request: Request) -> Response:
        try:
            _session, token = await self._current_token(request)
            verified = await self.providers.verifier.verify(token)
            principal = self.policy.principal_from_claims(verified.claims, verified.issuer.name)
        except SsoioError as error:
            return error_response(error)
        body = {
            "issuer": principal.issuer, "sub": principal.subject, "username": principal.username,
            "email": principal.email, "name": principal.name, "roles": sorted(principal.roles),
            "groups": sorted(principal.groups), "scopes": sorted(principal.scopes),
            "attributes": {k: list(v) for k, v in principal.attributes.items()},
            "auto_join": list(self.policy.auto_join(principal)),
            "expires_in": max(0, round(principal.expires_at - self.clock())),
        }  # fmt: skip
        return JSONResponse(body, headers=NO_STORE)

    # -- logout -----------------------------------------------------------------------------

    async def logout_route(self, request: Request) -> Response:
        """CSRF-safe: the cookie is SameSite=Lax (never sent on cross-site POSTs) and the
        request must come from an allowed origin (OWASP "verify origin with headers")."""
        origin = request.headers.get("origin") or _origin_of(request.headers.get("referer"))
        if origin is None or not self.gateway.origins.allows(origin):
            return error_response(OriginDenied("log out from this site's own pages"))
        session = await self._session(request.cookies.get(self.cookie_name))
        target: str | None = self.post_logout_uri
        if session is not None:
            await self._end(session, "logged_out", "local")
            target = self.client.end_session_url(session.id_token, self.post_logout_uri) or target
        if "application/json" in request.headers.get("accept", ""):
            response: Response = JSONResponse({"ok": True, "redirect": target}, headers=NO_STORE)
        else:
            response = RedirectResponse(target or "/", status_code=303, headers=NO_STORE)
        response.headers["set-cookie"] = self.cookies.header(None)
        return response

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
            ended = await self._end_sessions(issuer, sid, sub)
        except ClusterUnavailable as error:
            self.observe("auth.backchannel.logout", issuer=issuer, sub=sub, sockets=sockets,
                         code=error.code)  # fmt: skip
            return error_response(error)
        self.observe(
            "auth.backchannel.logout", issuer=issuer, sub=sub, sessions=ended, sockets=sockets
        )
        return Response(status_code=200, headers=NO_STORE)

    async def _end_sessions(self, issuer: str, sid: str | None, sub: str | None) -> int:
        found = await self.store.find(issuer, idp_session=sid, subject=sub if not sid else None)
        ended = 0
        for session_id in found:
            session = await self.store.load(session_id)
            if session is not None:
                await self._end(session, "logged_out", "backchannel")
                ended += 1
        return ended

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

    async def _end(self, session: WebSession, code: str, how: str) -> None:
        await self.store.delete(session.id)
        sockets = await self.gateway.disconnect_web_session(session.id, code)
        if session.idp_session and session.issuer:
            sockets += await self.gateway.disconnect_session(
                session.issuer, session.idp_session, code
            )
        self.observe(
            "auth.logout", how=how, issuer=session.issuer, sub=session.subject, sockets=sockets
        )

    # -- helpers ---------------------------------------------------------------------------

    async def _session(self, cookie_value: str | None) -> WebSession | None:
        session_id = self.cookies.unsign(cookie_value)
        return await self.store.load(session_id) if session_id else None

    async def _signed_in(self, request: Request) -> WebSession:
        # Same-origin only: browsers say where a request comes from (Fetch Metadata).
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise OriginDenied("the token hand-off is for this site's own pages")
        session = await self._session(request.cookies.get(self.cookie_name))
        if session is None or not session.authenticated:
            raise TokenMissing("not signed in")
        return session

    async def _current_token(self, request: Request) -> tuple[WebSession, str]:
        """The signed-in session of ``request`` and its (refreshed if due) access token."""
        session = await self._signed_in(request)
        token = await self._fresh_access_token(session)
        if token is None:
            raise TokenMissing("the session has ended; sign in again")
        return session, token

    async def _fresh_access_token(self, session: WebSession) -> str | None:
        """The session's access token, refreshed (once, for concurrent callers) when it
        expires within ``login.refresh_margin_s``; None when the session cannot go on."""
        if session.access_expires_at - self.clock() > self.login.refresh_margin_s:
            return session.access_token
        seen = session.access_token  # (a store may hand out the same object to every caller)
        lock = self._locks.lock(session.id)
        try:
            async with lock:
                current = await self.store.load(session.id)
                if current is None:
                    return None
                if current.access_token != seen:
                    return current.access_token  # refreshed while this caller waited
                return await self._refresh(current)
        finally:
            self._locks.release(session.id)

    async def _refresh(self, session: WebSession) -> str | None:
        if not session.refresh_token:
            return session.access_token if session.access_expires_at > self.clock() else None
        try:
            token = await self.client.refresh(session.refresh_token)
            verified = await self.providers.verifier.verify(token.get("access_token"))
            _same_identity(session, verified)
        except IdpUnavailable as exc:
            # the provider is down, not the session: keep it while its token is good
            self.observe("auth.refresh.failed", sub=session.subject, kind=type(exc).__name__)
            if session.access_expires_at > self.clock():
                return session.access_token
            raise
        except SsoioError as exc:  # GrantRefused included: the refresh token is no good
            self.observe("auth.refresh.failed", sub=session.subject, kind=type(exc).__name__)
            await self._end(session, "token_expired", "refresh_failed")
            return None
        session.access_token = token["access_token"]
        session.refresh_token = _string(token.get("refresh_token")) or session.refresh_token
        session.id_token = token.get("id_token") or session.id_token
        session.access_expires_at = verified.expires_at
        await self.store.save(session)
        self.observe("auth.session.refreshed", sub=session.subject)
        return session.access_token


def _same_identity(session: WebSession, verified: VerifiedToken) -> None:
    """OIDC Core §12.2: a refresh answer is for the user who signed in, at the same issuer;
    a session never changes identity."""
    if verified.issuer.name != session.issuer or verified.claims.get("sub") != session.subject:
        raise ClaimsInvalid("the refreshed token is for another identity")


def _same(given: str, expected: str) -> bool:
    # constant time; as bytes, since compare_digest refuses non-ASCII str (a TypeError)
    return hmac.compare_digest(given.encode(), expected.encode())


def _short(value: object) -> str:
    text = str(value or "error")
    return "".join(c for c in text[:64] if c.isalnum() or c in "_-.")


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _origin_of(url: str | None) -> str | None:
    return origin_of(url) if url else None
