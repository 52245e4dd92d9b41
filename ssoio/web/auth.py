"""Browser single sign-on routes: login, callback, token hand-off, me (the logouts are
in ``logout.py``, the landing page in ``landing.py``).

::

    GET  /auth/login?next=/path     start the authorization-code flow (PKCE S256, state,
                                    nonce, kept in the pre-login cookie); rate-limited per
                                    address (limits.logins_per_ip)
    GET  /auth/callback             check state, exchange the code, verify the ID token,
                                    start a fresh session (new id: no fixation)
    GET  /auth/token                the session's access token (refreshed near expiry),
                                    bound to the session: its sockets end with it
    GET  /auth/me                   the principal as ssoio sees it

Every access token the session gets (at sign-in, at each refresh) is bound to it in the
session store by its fingerprint, so a socket that presents it, by ``auth.token`` or
``Authorization``, belongs to the session whatever the token says: many providers put no
``sid`` in access tokens (LemonLDAP::NG, Okta, Auth0). A refresh the provider refuses
with ``invalid_grant`` means the person signed out there (``logged_out``).
"""

from __future__ import annotations

import logging

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
    TokenRevoked,
)
from ssoio.oidc.providers import IdentityProviders
from ssoio.oidc.verified import VerifiedToken
from ssoio.policy.engine import Policy
from ssoio.realtime.gateway import Gateway
from ssoio.realtime.seams import BrowserSession, LimiterFactory
from ssoio.responses import NO_STORE, error_response
from ssoio.web.logout import Logouts, ReplayCache, same_text
from ssoio.web.oidc_client import GrantRefused, LoginClient
from ssoio.web.pages import error_page
from ssoio.web.pending import PendingLogin, PendingLogins
from ssoio.web.redirects import safe_next
from ssoio.web.sessions import RefreshLocks, SessionCookies, SessionStore, WebSession
from ssoio.web.throttle import AddressLimit

__all__ = ["BrowserLogin"]

log = logging.getLogger(__name__)


class BrowserLogin:
    """The login issuer's browser flow and sessions, for one node (their ends:
    ``logout.Logouts``, reached as ``self.logouts``).

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
        self.login_limit = AddressLimit(
            "logins", limits.logins_per_ip, clock, limits.max_tracked_keys, shared_limits
        )
        self._locks = RefreshLocks()
        self.logouts = Logouts(settings, self.client, providers, gateway, store, self.cookies,
                               clock, shared_limits=shared_limits, replay=replay)  # fmt: skip
        base = settings.server.public_url.rstrip("/")
        self.redirect_uri = f"{base}/auth/callback"

    def routes(self) -> list[Route]:
        return [
            Route("/auth/login", self.login_route, methods=["GET"]),
            Route("/auth/callback", self.callback_route, methods=["GET"]),
            Route("/auth/token", self.token_route, methods=["GET"]),
            Route("/auth/me", self.me_route, methods=["GET"]),
            *self.logouts.routes(),
        ]

    # -- the session seam the Socket.IO gateway uses --------------------------------------

    async def resolve(self, cookie_value: str) -> tuple[BrowserSession, str] | None:
        """A session cookie's session and its current access token, or None."""
        session_id = self.cookies.unsign(cookie_value)
        session = await self.store.load(session_id) if session_id else None
        if session is None or not session.authenticated:
            return None
        token = await self.fresh_access_token(session)
        return (BrowserSession(session.id, session.expires_at), token) if token else None

    async def token_session(self, fingerprint: bytes) -> BrowserSession | None:
        """The session a token was handed to, if any.

        :raises TokenRevoked: that session has ended: the token is dead for ssoio, even
            while the provider would still call it valid.
        """
        try:
            session_id = await self.store.token_session(fingerprint)
        except ClusterUnavailable:
            # Redis down: tokens are still verified as any bearer token (as before tokens
            # were bound), and the outage is logged; refusing every connect is worse.
            self.observe("auth.binding.unavailable")
            return None
        if session_id is None:
            return None
        session = await self.store.load(session_id)
        if session is None:
            raise TokenRevoked("the browser session this token was issued to has ended")
        return BrowserSession(session.id, session.expires_at)

    async def _bind(self, session: WebSession, verified: VerifiedToken) -> None:
        """Bind the session's new access token to it, for as long as the token lives."""
        until = verified.expires_at + verified.issuer.leeway_s
        await self.store.bind_token(verified.fingerprint, session.id, until)

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
        if pending is None or not state or not same_text(state, pending.state):
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
        await self._bind(session, verified)
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

    # -- helpers ---------------------------------------------------------------------------

    async def _signed_in(self, request: Request) -> WebSession:
        # Same-origin only: browsers say where a request comes from (Fetch Metadata).
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise OriginDenied("the token hand-off is for this site's own pages")
        session = await self.logouts.session_of(request)
        if session is None or not session.authenticated:
            raise TokenMissing("not signed in")
        return session

    async def _current_token(self, request: Request) -> tuple[WebSession, str]:
        """The signed-in session of ``request`` and its (refreshed if due) access token."""
        session = await self._signed_in(request)
        token = await self.fresh_access_token(session)
        if token is None:
            raise TokenMissing("the session has ended; sign in again")
        return session, token

    async def fresh_access_token(self, session: WebSession) -> str | None:
        """The session's access token, refreshed (once, for concurrent callers) when it
        expires within ``login.refresh_margin_s``; None when the session cannot go on."""
        if session.access_expires_at - self.clock() > self.login.refresh_margin_s:
            return session.access_token
        return await self._refresh_once(session)

    async def revalidate(self, session_id: str) -> None:
        """``login.session_check_s``: ask the provider whether the session still stands
        (a refresh: refused, the session ends, ``logged_out``); a session gone from the
        store (expired, ended on a node that could not reach this one) ends its sockets."""
        session = await self.store.load(session_id)
        if session is None:
            await self.gateway.disconnect_web_session(session_id, "logged_out")
        elif session.refresh_token:
            await self._refresh_once(session)

    async def _refresh_once(self, session: WebSession) -> str | None:
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
            # RFC 6749 §5.2: invalid_grant is a refresh token the provider revoked, which
            # it does when the person signed out there (Keycloak, LemonLDAP::NG, Entra ID)
            if isinstance(exc, GrantRefused) and exc.error == "invalid_grant":
                await self.logouts.end(session, "logged_out", "provider_refused_refresh")
            else:
                await self.logouts.end(session, "token_expired", "refresh_failed")
            return None
        session.access_token = token["access_token"]
        session.refresh_token = _string(token.get("refresh_token")) or session.refresh_token
        session.id_token = token.get("id_token") or session.id_token
        session.access_expires_at = verified.expires_at
        await self.store.save(session)
        await self._bind(session, verified)
        self.observe("auth.session.refreshed", sub=session.subject)
        return session.access_token


def _same_identity(session: WebSession, verified: VerifiedToken) -> None:
    """OIDC Core §12.2: a refresh answer is for the user who signed in, at the same issuer;
    a session never changes identity."""
    if verified.issuer.name != session.issuer or verified.claims.get("sub") != session.subject:
        raise ClaimsInvalid("the refreshed token is for another identity")


def _short(value: object) -> str:
    text = str(value or "error")
    return "".join(c for c in text[:64] if c.isalnum() or c in "_-.")


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
