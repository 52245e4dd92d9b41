"""The development provider's HTTP routes (Starlette), relative to its mount path.

GET       /.well-known/openid-configuration   discovery
GET       /jwks                               the public keys
GET, POST /authorize                          pick a user, get a code (consent implied)
POST      /token                              code (+PKCE), refresh, client credentials
GET, POST /userinfo                           OIDC Core §5.3
GET, POST /end_session                        RP-initiated logout, then back-channel logout
POST      /admin/rotate-keys                  a new signing key; old ones stay published
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ssoio.devidp.adapter import BodyTooLarge, DevOAuth2Request, read_request
from ssoio.devidp.keys import SigningKeys
from ssoio.devidp.logout import BackchannelLogout
from ssoio.devidp.pages import error_page, login_page, logout_confirm_page, signed_out_page
from ssoio.devidp.server import DevAuthorizationServer
from ssoio.devidp.sessions import ProviderSession

__all__ = ["COOKIE", "Routes"]

COOKIE = "ssoio_devidp"  # the browser's provider session (its handle, never its sid)
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Routes:
    """The handlers, over the provider's parts; ``origin`` is the public ``scheme://host``."""

    server: DevAuthorizationServer
    keys: SigningKeys
    backchannel: BackchannelLogout
    metadata: dict[str, Any]
    origin: str
    cookie_path: str
    rotate_keys: Callable[[], str]

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery, methods=["GET"]),
                Route("/jwks", self.jwks, methods=["GET"]),
                Route("/authorize", self.authorize, methods=["GET", "POST"]),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo, methods=["GET", "POST"]),
                Route("/end_session", self.end_session, methods=["GET", "POST"]),
                Route("/admin/rotate-keys", self.rotate, methods=["POST"]),
            ],
            exception_handlers={BodyTooLarge: _too_large},
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(self.metadata)

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.keys.public_jwks(), headers={"Cache-Control": "no-cache"})

    async def rotate(self, request: Request) -> Response:
        # A page of another site must not be able to rotate keys with a simple POST.
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() != self.origin.lower():
            return JSONResponse({"error": "origin_denied"}, 403, headers=_NO_STORE)
        kid = self.rotate_keys()
        return JSONResponse({"kid": kid, "kids": self.keys.kids}, headers=_NO_STORE)

    async def token(self, request: Request) -> Response:
        return await self._authlib(request, self.server.create_token_response)

    async def userinfo(self, request: Request) -> Response:
        return await self._authlib(
            request, lambda oauth: self.server.create_endpoint_response("userinfo", oauth)
        )

    async def _authlib(
        self, request: Request, answer: Callable[[DevOAuth2Request], Response]
    ) -> Response:
        return answer(await read_request(request, self.origin))

    # -- authorization (RFC 6749 §4.1.1, OIDC Core §3.1.2) ------------------------------------

    async def authorize(self, request: Request) -> Response:
        oauth = await read_request(request, self.origin)
        browser = self._browser_session(request)
        try:
            grant = self.server.get_consent_grant(oauth, browser.as_user() if browser else None)
        except OAuth2Error as error:
            return self._authorization_error(oauth, error)
        if "username" in oauth.form:  # the login page's "sign in as" button
            return self._sign_in(request, oauth, grant, browser)
        if browser is not None and oauth.payload.data.get("prompt") == "none":
            return self._issue(oauth, grant, browser)  # §3.1.2.1: no UI, reuse the session
        return self._login_page(request, oauth, grant)

    def _sign_in(
        self, request: Request, oauth: DevOAuth2Request, grant: Any, browser: ProviderSession | None
    ) -> Response:
        user = self.server.directory.users.get(oauth.form.get("username", ""))
        if user is None:
            return self._login_page(request, oauth, grant, error="Pick one of the listed users.")
        session = self.server.sessions.sign_in(user, browser)
        response = self._issue(oauth, grant, session)
        response.set_cookie(
            COOKIE,
            session.handle,
            path=self.cookie_path,
            httponly=True,
            samesite="lax",
            secure=self.origin.startswith("https:"),
        )
        return response

    def _issue(self, oauth: DevOAuth2Request, grant: Any, session: ProviderSession) -> Response:
        response: Response = self.server.create_authorization_response(
            oauth, grant_user=session.as_user(), grant=grant
        )
        return response

    def _login_page(
        self, request: Request, oauth: DevOAuth2Request, grant: Any, error: str | None = None
    ) -> Response:
        # The authorization request rides along in the form, however it arrived (GET or POST).
        fields = {k: v for k, v in oauth.payload.data.items() if k != "username"}
        client, users = grant.client, self.server.directory.users.values()
        name = client.name or client.client_id
        return login_page(request.url.path, fields, name, grant.request.scope, users, error)

    def _authorization_error(self, oauth: DevOAuth2Request, error: OAuth2Error) -> Response:
        # RFC 6749 §4.1.2.1: without a client and redirect URI known to be good, the user
        # is told, and the user agent is not sent anywhere.
        if error.redirect_uri:
            return self.server.authorization_error(oauth, error)
        return error_page(str(error.error), str(error.description or ""))

    # -- logout (RP-Initiated Logout 1.0, Back-Channel Logout 1.0) ----------------------------

    async def end_session(self, request: Request) -> Response:
        oauth = await read_request(request, self.origin)
        oauth.browser_session = self._browser_session(request)
        try:
            validated = self.server.validate_endpoint_request("end_session", oauth)
        except OAuth2Error as error:
            return error_page(str(error.error), str(error.description or ""))
        # RP-Initiated Logout §6: no hint, so the user confirms, by a POST that carries the
        # SameSite=Lax cookie only when it comes from this provider's own page.
        if validated.needs_confirmation and oauth.form.get("confirm") != "yes":
            fields = {k: v for k, v in oauth.payload.data.items() if k != "confirm"}
            return logout_confirm_page(request.url.path, fields)
        response: Response = (
            self.server.create_endpoint_response("end_session", validated) or signed_out_page()
        )
        ended = oauth.ended_session
        if ended is not None:
            await self.backchannel.notify(ended)  # BCL 1.0 §2.7: before the browser moves on
            if ended is oauth.browser_session:
                response.delete_cookie(COOKIE, path=self.cookie_path)
        return response

    def _browser_session(self, request: Request) -> ProviderSession | None:
        return self.server.sessions.of_browser(request.cookies.get(COOKIE))


async def _too_large(request: Request, exc: Exception) -> Response:
    return error_page("invalid_request", "The request body is too large.", 413)
