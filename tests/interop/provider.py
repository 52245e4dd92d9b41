"""A real third-party OpenID Provider (node `oidc-provider`, see idp.mjs) driven from Python.

`NodeProvider.start()` runs `node idp.mjs` on 127.0.0.1 and waits for its ready line; the helper
methods speak to it over plain HTTP like any relying party would (authorization code + PKCE,
client credentials, refresh), so the tokens ssoio receives in tests are the ones a real OP mints.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest

from .processes import drain, terminate

INTEROP_DIR: Final = Path(__file__).resolve().parent
IDP_SCRIPT: Final = INTEROP_DIR / "idp.mjs"

DEFAULT_REDIRECT_URI: Final = "http://127.0.0.1:8000/auth/callback"
DEFAULT_POST_LOGOUT_REDIRECT_URI: Final = "http://127.0.0.1:8000/"
WEB_CLIENT_ID: Final = "ssoio-web"
WEB_CLIENT_SECRET: Final = "ssoio-web-secret"
START_TIMEOUT_S: Final = 60.0  # (a loaded 2-core machine once took over 30)
HTTP_TIMEOUT_S: Final = 10.0
NPM_CI_TIMEOUT_S: Final = 300.0
MAX_REDIRECTS: Final = 10
CROWD_GRANT: Final = "urn:ssoio:test:crowd"  # idp.mjs: crowd members' tokens, tests only


class ProviderError(RuntimeError):
    """The node OpenID Provider could not be started or answered unexpectedly."""


class LoginFailed(ProviderError):
    """The provider did not accept the credentials (its login form came back with an error)."""


def require_tool(name: str) -> str:
    """Path of an executable; a missing one skips the test locally and fails it on CI."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name!r} is not installed (needed by the interop tests)")
    return path


def missing(reason: str) -> NoReturn:
    """A tool the test needs is missing: skipped locally, failed on CI (CI=true)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must provide it")
    pytest.skip(reason)


def _node_modules_current() -> bool:
    """True when every dependency pinned in package.json is installed at its pinned version."""
    manifest = json.loads((INTEROP_DIR / "package.json").read_text(encoding="utf-8"))
    for name, version in manifest.get("dependencies", {}).items():
        installed = INTEROP_DIR / "node_modules" / name / "package.json"
        if not installed.is_file():
            return False
        if json.loads(installed.read_text(encoding="utf-8")).get("version") != version:
            return False
    return True


def ensure_node_modules() -> None:
    """Install the pinned node packages of tests/interop (`npm ci`) when missing or stale."""
    if _node_modules_current():
        return
    npm = require_tool("npm")
    try:
        subprocess.run(
            [npm, "ci", "--no-fund", "--no-audit"],
            cwd=INTEROP_DIR,
            check=True,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
        )
    except subprocess.CalledProcessError as exc:
        raise ProviderError(f"npm ci failed in {INTEROP_DIR}:\n{exc.stderr[-4000:]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProviderError(f"npm ci did not finish within {NPM_CI_TIMEOUT_S:.0f} s") from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwt_part(token: str, index: int) -> dict[str, Any]:
    """Decode a JWT header (0) or payload (1) WITHOUT verifying anything (test inspection)."""
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def jwt_header(token: str) -> dict[str, Any]:
    """The unverified JOSE header of a compact JWS."""
    return _jwt_part(token, 0)


def jwt_payload(token: str) -> dict[str, Any]:
    """The unverified claims of a compact JWS; verifying is ssoio's job, not the tests'."""
    return _jwt_part(token, 1)


def _pkce_pair() -> tuple[str, str]:
    verifier = _b64url(secrets.token_bytes(48))
    challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    return verifier, challenge


_FORM_ACTION = re.compile(r'<form[^>]*\baction="([^"]+)"', re.IGNORECASE)
_HIDDEN_INPUT = re.compile(
    r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.IGNORECASE
)
_ERROR_TEXT = re.compile(r'class="error"[^>]*>([^<]*)<', re.IGNORECASE)


def _page_error(body: str) -> str:
    match = _ERROR_TEXT.search(body)
    return html.unescape(match.group(1)).strip() if match else body[:500]


@dataclass
class UserLogin:
    """Result of a browser-like login: the token response plus the OP's cookies for that user.

    Keep the cookies to end the OP session later (RP-initiated logout, back-channel logout).
    """

    tokens: dict[str, Any]
    cookies: httpx.Cookies = field(repr=False)


@dataclass
class NodeProvider:
    """A running `node idp.mjs`; build it with `await NodeProvider.start()`."""

    issuer: str
    port: int
    process: asyncio.subprocess.Process = field(repr=False)
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    _stderr: bytearray = field(default_factory=bytearray, repr=False)
    _stderr_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _stdout_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def start(
        cls,
        *,
        at_ttl: int = 300,
        redirect_uris: list[str] | None = None,
        post_logout_redirect_uris: list[str] | None = None,
        backchannel_logout_uri: str | None = None,
        port: int = 0,
        access_token_sid: bool = True,
        access_token_typ: str | None = None,
        groups_join: str | None = None,
    ) -> NodeProvider:
        """Start the provider and wait (at most START_TIMEOUT_S) until it listens.

        :param access_token_sid: False: access tokens carry no ``sid`` (as LemonLDAP::NG's,
            Okta's and Auth0's by default); ID and logout tokens still do.
        :param access_token_typ: the access tokens' JWS ``typ`` (default RFC 9068's ``at+jwt``;
            Keycloak, Auth0 and LemonLDAP::NG send ``JWT``).
        :param groups_join: release ``groups`` as one string joined by this (LemonLDAP::NG
            without the array claim type), every account also in ``users``.
        """
        node = require_tool("node")
        redirects = redirect_uris or [DEFAULT_REDIRECT_URI]
        post_logout = post_logout_redirect_uris or [DEFAULT_POST_LOGOUT_REDIRECT_URI]
        env = {
            **os.environ,
            "IDP_PORT": str(port),
            "IDP_AT_TTL": str(at_ttl),
            "IDP_REDIRECT_URIS": ",".join(redirects),
            "IDP_POST_LOGOUT_REDIRECT_URIS": ",".join(post_logout),
            "IDP_AT_SID": "1" if access_token_sid else "0",
            "IDP_AT_TYP": access_token_typ or "",
            "IDP_GROUPS_JOIN": groups_join or "",
        }
        env.pop("IDP_BACKCHANNEL_LOGOUT_URI", None)
        if backchannel_logout_uri:
            env["IDP_BACKCHANNEL_LOGOUT_URI"] = backchannel_logout_uri

        process = await asyncio.create_subprocess_exec(
            node,
            str(IDP_SCRIPT),
            cwd=INTEROP_DIR,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stderr = bytearray()
        stderr_task = asyncio.create_task(drain(process.stderr, stderr))
        try:
            ready = await asyncio.wait_for(_read_ready(process), START_TIMEOUT_S)
        except BaseException as exc:
            # Never leave a half-started node behind, whatever interrupted the wait.
            await terminate(process)
            # Let the drain task collect what the process said before dying.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stderr_task), 1.0)
            stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stderr_task
            if not isinstance(exc, Exception):
                raise
            tail = bytes(stderr[-4000:]).decode("utf-8", "replace")
            if isinstance(exc, TimeoutError):
                msg = f"node idp.mjs gave no ready line within {START_TIMEOUT_S:.0f} s"
            else:
                msg = f"node idp.mjs failed to start: {exc!r}"
            raise ProviderError(f"{msg}; stderr tail:\n{tail}") from exc

        return cls(
            issuer=str(ready["issuer"]),
            port=int(ready["port"]),
            process=process,
            redirect_uris=redirects,
            post_logout_redirect_uris=post_logout,
            _stderr=stderr,
            _stderr_task=stderr_task,
            # stdout must keep being read too, or a chatty child could block on a full pipe.
            _stdout_task=asyncio.create_task(drain(process.stdout, stderr)),
        )

    async def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 5 s) and stop reading its pipes."""
        await terminate(self.process)
        for task in (self._stderr_task, self._stdout_task):
            if task is None:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), 1.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def stderr_text(self) -> str:
        """What the provider printed so far (last 64 KiB), for assertion messages."""
        return bytes(self._stderr).decode("utf-8", "replace")

    # ------------------------------------------------------------------ plumbing

    def _client(self, **kwargs: Any) -> httpx.AsyncClient:
        # trust_env=False: never route 127.0.0.1 through a proxy from the environment.
        return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, trust_env=False, **kwargs)

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached)."""
        if self._metadata is None:
            async with self._client() as client:
                response = await client.get(f"{self.issuer}/.well-known/openid-configuration")
                response.raise_for_status()
                self._metadata = response.json()
        return self._metadata

    async def jwks(self) -> dict[str, Any]:
        """The provider's current public key set (not cached: keys rotate)."""
        jwks_uri = (await self.metadata())["jwks_uri"]
        async with self._client() as client:
            response = await client.get(jwks_uri)
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

    async def _token_request(
        self, data: dict[str, str], client_id: str, client_secret: str
    ) -> dict[str, Any]:
        token_endpoint = (await self.metadata())["token_endpoint"]
        async with self._client() as client:
            response = await client.post(
                token_endpoint, data=data, auth=httpx.BasicAuth(client_id, client_secret)
            )
        if response.status_code != httpx.codes.OK:
            raise ProviderError(
                f"token endpoint refused grant {data.get('grant_type')!r} for {client_id!r}: "
                f"{response.status_code} {response.text}"
            )
        result: dict[str, Any] = response.json()
        return result

    # ------------------------------------------------------------------ flows

    async def login(
        self,
        username: str,
        password: str | None = None,
        *,
        scope: str = "openid profile email chat",
        redirect_uri: str | None = None,
    ) -> UserLogin:
        """Authorization code + PKCE (S256) as a browser would do it; returns tokens and cookies.

        The redirect back to `redirect_uri` is never fetched: the code is read from it.
        """
        if password is None:
            password = f"{username}-pw"
        redirect_uri = redirect_uri or self.redirect_uris[0]
        meta = await self.metadata()
        verifier, challenge = _pkce_pair()
        state = secrets.token_urlsafe(16)
        nonce = secrets.token_urlsafe(16)
        url = (
            meta["authorization_endpoint"]
            + "?"
            + urlencode(
                {
                    "client_id": WEB_CLIENT_ID,
                    "response_type": "code",
                    "scope": scope,
                    "redirect_uri": redirect_uri,
                    "state": state,
                    "nonce": nonce,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                }
            )
        )

        async with self._client(follow_redirects=False) as client:
            response = await client.get(url)
            login_posted = False
            code: str | None = None
            for _ in range(MAX_REDIRECTS):
                if response.is_redirect:
                    location = urljoin(str(response.url), response.headers["location"])
                    if location.startswith(redirect_uri):
                        code = _code_from_redirect(location, state, self.issuer)
                        break
                    response = await client.get(location)
                    continue
                if response.status_code != httpx.codes.OK:
                    raise ProviderError(
                        f"authorization for {username!r} failed at {response.url}: "
                        f"{response.status_code} {_page_error(response.text)}"
                    )
                if "/interaction/" not in response.url.path:
                    raise ProviderError(f"unexpected page at {response.url}: {response.text[:500]}")
                if login_posted:
                    raise LoginFailed(
                        f"login of {username!r} rejected: {_page_error(response.text)}"
                    )
                action = _FORM_ACTION.search(response.text)
                if action is None:
                    raise ProviderError(f"no login form at {response.url}: {response.text[:500]}")
                response = await client.post(
                    urljoin(str(response.url), html.unescape(action.group(1))),
                    data={"username": username, "password": password},
                )
                login_posted = True
            if code is None:
                raise ProviderError(f"no redirect to {redirect_uri} after {MAX_REDIRECTS} hops")
            cookies = httpx.Cookies(client.cookies)

        tokens = await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            WEB_CLIENT_ID,
            WEB_CLIENT_SECRET,
        )
        id_token = tokens.get("id_token")
        if isinstance(id_token, str) and jwt_payload(id_token).get("nonce") != nonce:
            raise ProviderError("the ID token does not carry the nonce of the request")
        return UserLogin(tokens=tokens, cookies=cookies)

    async def user_tokens(
        self,
        username: str,
        password: str | None = None,
        *,
        scope: str = "openid profile email chat",
        redirect_uri: str | None = None,
    ) -> dict[str, Any]:
        """Token response (access_token, id_token, refresh_token, ...) for a reference user.

        The password defaults to the reference one (`<username>-pw`); a wrong one raises
        `LoginFailed`.
        """
        result = await self.login(username, password, scope=scope, redirect_uri=redirect_uri)
        return result.tokens

    async def client_credentials_token(
        self,
        client_id: str = "ssoio-backend",
        client_secret: str = "ssoio-backend-secret",  # noqa: S107 (reference test client)
        scope: str = "ssoio:emit",
    ) -> str:
        """A client-credentials access token (JWT for ssoio's API)."""
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        tokens = await self._token_request(data, client_id, client_secret)
        return str(tokens["access_token"])

    async def crowd_tokens(self, count: int, *, concurrency: int = 20) -> list[str]:
        """Access tokens of ``count`` distinct crowd members (``crowd-1`` ...; idp.mjs's
        test-only grant: one request each, no login pages)."""
        token_endpoint = (await self.metadata())["token_endpoint"]
        gate = asyncio.Semaphore(concurrency)
        auth = httpx.BasicAuth("ssoio-crowd", "ssoio-crowd-secret")

        async def one(client: httpx.AsyncClient, number: int) -> str:
            data = {"grant_type": CROWD_GRANT, "username": f"crowd-{number}"}
            async with gate:
                response = await client.post(token_endpoint, data=data, auth=auth)
            if response.status_code != httpx.codes.OK:
                raise ProviderError(f"crowd grant refused: {response.status_code} {response.text}")
            return str(response.json()["access_token"])

        async with self._client() as client:
            return list(await asyncio.gather(*(one(client, n + 1) for n in range(count))))

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """Redeem a refresh token of ssoio-web; returns the new token response."""
        return await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            WEB_CLIENT_ID,
            WEB_CLIENT_SECRET,
        )

    async def end_session(
        self, login: UserLogin, *, post_logout_redirect_uri: str | None = None
    ) -> None:
        """RP-initiated logout of that login's OP session (fires back-channel logout, if set).

        Returns once the OP answered the confirmation, i.e. after its back-channel POSTs.
        """
        meta = await self.metadata()
        params = {"client_id": WEB_CLIENT_ID}
        id_token = login.tokens.get("id_token")
        if isinstance(id_token, str):
            params["id_token_hint"] = id_token
        if post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = post_logout_redirect_uri
        async with self._client(follow_redirects=False, cookies=login.cookies) as client:
            response = await client.get(meta["end_session_endpoint"], params=params)
            if response.status_code != httpx.codes.OK:
                raise ProviderError(f"end_session failed: {response.status_code} {response.text}")
            action = _FORM_ACTION.search(response.text)
            if action is None:
                raise ProviderError(f"no logout form: {response.text[:500]}")
            form = {
                name: html.unescape(value) for name, value in _HIDDEN_INPUT.findall(response.text)
            }
            form["logout"] = "yes"
            confirm = await client.post(html.unescape(action.group(1)), data=form)
            if confirm.status_code not in (
                httpx.codes.OK,
                httpx.codes.SEE_OTHER,
                httpx.codes.FOUND,
            ):
                raise ProviderError(f"logout confirm failed: {confirm.status_code} {confirm.text}")

    # ------------------------------------------------------------------ test control

    async def rotate_keys(self, *, drop_old: bool = False) -> str:
        """New RSA signing key, first in the set (signs from now on); returns its kid."""
        async with self._client() as client:
            response = await client.post(
                f"{self.issuer}/__test/rotate", params={"drop_old": "1"} if drop_old else None
            )
            response.raise_for_status()
            return str(response.json()["kid"])

    async def kids(self) -> list[str]:
        """Kids of the provider's signing keys, the signing one first."""
        async with self._client() as client:
            response = await client.get(f"{self.issuer}/__test/kids")
            response.raise_for_status()
            return [str(kid) for kid in response.json()["kids"]]


def _code_from_redirect(location: str, state: str, issuer: str) -> str:
    query = parse_qs(urlsplit(location).query)
    if "error" in query:
        raise ProviderError(
            f"authorization error: {query['error'][0]} {query.get('error_description', [''])[0]}"
        )
    if query.get("state") != [state]:
        raise ProviderError(f"state mismatch in redirect {location}")
    # RFC 9207: oidc-provider names itself; a mix-up would show here.
    if query.get("iss", [issuer]) != [issuer]:
        raise ProviderError(f"unexpected iss in redirect {location}")
    codes = query.get("code")
    if not codes:
        raise ProviderError(f"no code in redirect {location}")
    return codes[0]


async def _read_ready(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        raise ProviderError(f"node exited before it was ready (exit code {await process.wait()})")
    try:
        ready: dict[str, Any] = json.loads(line)
    except ValueError as exc:
        raise ProviderError(f"unexpected first line on stdout: {line[:200]!r}") from exc
    if ready.get("ready") is not True:
        raise ProviderError(f"unexpected ready line: {ready!r}")
    return ready
