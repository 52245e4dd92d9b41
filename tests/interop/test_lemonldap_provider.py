"""LemonLDAP::NG 2.16 from Debian as a real OpenID Provider (tests/interop/lemonldap.py): the
harness starts it, headless Chromium signs in at ssoio through its portal, and its logout
page calls the front-channel logout URL; nothing is left running afterwards."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from .browser import run_browser, step_errors, values
from .lemonldap import USERS, LemonLdapProvider, group_members, running_lemonldap
from .lemonldap_login import lemonldap_login_setup
from .provider import jwt_header, jwt_payload

pytestmark = pytest.mark.interop

CALLBACK = "http://127.0.0.1:9/auth/callback"
FETCH_JSON = "fetch({url!r}).then(async (r) => JSON.stringify([r.status, await r.json()]))"


def _processes_under(path: Path) -> list[str]:
    """Command lines of live processes that name ``path`` (nginx -p/-c, the FastCGI socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _assert_nothing_left(workdir: Path, pgids: list[int]) -> None:
    assert not workdir.exists()
    assert _processes_under(workdir) == []
    assert {pgid: group_members(pgid) for pgid in pgids} == {pgid: [] for pgid in pgids}


async def test_discovery_and_keys() -> None:
    started = time.monotonic()
    async with running_lemonldap(redirect_uris=[CALLBACK]) as provider:
        start_s = time.monotonic() - started
        workdir, pgids = provider.workdir, provider.pgids
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            response = await client.get(f"{provider.portal}.well-known/openid-configuration")
        assert response.status_code == 200, provider.logs
        meta = response.json()
        assert provider.issuer.endswith("/")
        assert meta["issuer"] == provider.issuer == provider.portal
        assert meta["frontchannel_logout_supported"] is True
        assert meta["frontchannel_logout_session_supported"] is True
        assert meta["backchannel_logout_supported"] is False
        assert meta["end_session_endpoint"].startswith(provider.portal)
        jwks = await provider.jwks()
        assert [(k["kty"], k["use"]) for k in jwks["keys"]] == [("RSA", "sig")]
        assert {"kid", "n", "e"} <= set(jwks["keys"][0])
        assert all(group_members(pgid) for pgid in pgids)  # nginx and the FastCGI server
    print(f"LemonLDAP::NG harness: started in {start_s:.2f} s")
    _assert_nothing_left(workdir, pgids)


async def _refresh(provider: LemonLdapProvider, refresh_token: str) -> httpx.Response:
    token_endpoint = (await provider.metadata())["token_endpoint"]
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        return await client.post(
            token_endpoint,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(provider.client_id, provider.client_secret),
        )


def _sign_in_steps(url: str, context: str, login: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sign in at ssoio through the portal's form, land on /auth/me, read /auth/me and
    /auth/token from the page."""
    return [
        {"op": "goto", "context": context, "url": f"{url}/auth/login?next=/auth/me"},
        *login,
        {"op": "wait_for_url", "context": context, "pattern": f"{url}/auth/me"},
        {"op": "eval", "context": context, "expression": FETCH_JSON.format(url="/auth/me")},
        {"op": "eval", "context": context, "expression": FETCH_JSON.format(url="/auth/token")},
    ]


async def test_sign_in_with_chromium_and_front_channel_logout() -> None:
    user = USERS["dwho"]
    async with lemonldap_login_setup() as setup:
        provider = setup.provider
        workdir, pgids = provider.workdir, provider.pgids
        steps = [
            *_sign_in_steps(setup.url, "dwho", provider.login_steps("dwho", user.login)),
            {"op": "cookies", "context": "dwho", "urls": [provider.portal]},
            *provider.logout_steps("dwho"),
            {"op": "eval", "context": "dwho", "expression": "document.querySelectorAll("
             "'iframe').length"},
            # the portal session is gone: its page asks for credentials again
            {"op": "goto", "context": "dwho", "url": provider.portal},
            {"op": "wait_for_selector", "context": "dwho", "selector": "#userfield"},
        ]  # fmt: skip
        observations = await run_browser({"contexts": {"dwho": {}}, "steps": steps})
        assert step_errors(observations) == [], (observations, provider.logs)
        status, me = json.loads(values(observations, "eval")[0])
        assert status == 200, me
        assert me["issuer"] == "lemonldap"
        assert me["sub"] == user.sub
        assert me["username"] == user.login
        assert me["email"] == user.email
        assert me["name"] == user.name
        assert me["groups"] == sorted(user.groups)
        assert me["roles"] == sorted(user.roles)
        assert {"openid", "profile", "email", "groups", "chat"} <= set(me["scopes"])

        # The access token ssoio got (and hands to pages) is a JWT without `sid`: the case
        # of issue #15, where a socket opened with it is tied to no provider session.
        status, token = json.loads(values(observations, "eval")[1])
        assert status == 200, token
        access_token = token["access_token"]
        header, claims = jwt_header(access_token), jwt_payload(access_token)
        assert (header["typ"], header["alg"]) == ("JWT", "RS256")
        assert "sid" not in claims
        assert claims["iss"] == provider.issuer
        assert claims["aud"] == [provider.client_id]
        assert claims["client_id"] == provider.client_id
        assert 590 <= claims["exp"] - claims["iat"] <= 610

        # The portal's SSO cookie is a cookie of the host localhost (Domain=.localhost).
        [jar] = values(observations, "cookies")
        assert [(c["domain"], c["httpOnly"]) for c in jar if c["name"] == "lemonldap"] == [
            ("localhost", True)
        ]

        [session] = await setup.sessions(user.sub)
        assert session.id_token is not None
        assert session.refresh_token
        id_claims = jwt_payload(session.id_token)
        # LemonLDAP::NG 2.16 writes no `sid` in ID tokens either.
        assert "sid" not in id_claims
        assert session.idp_session is None

        # Its logout page framed the front-channel URL with iss and sid (= the subject).
        assert values(observations, "eval")[2] == 1
        [request] = setup.recorder.requests
        assert request["query"] == {"iss": provider.issuer, "sid": id_claims["sub"]}
        # ...from its page, which says so (ssoio relies on it to accept sid = sub)
        assert request["referer"] == f"{provider.origin}/"
        assert request["sec_fetch_dest"] == "iframe"
        assert request["sec_fetch_site"] == "cross-site"
        # A cross-site frame: ssoio's SameSite=Lax session cookie did not come with it.
        assert request["cookies"] == []

        # The refresh tokens were tied to the portal session: refused now (invalid_grant).
        refused = await _refresh(provider, session.refresh_token)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
    _assert_nothing_left(workdir, pgids)


async def test_refresh_and_rp_initiated_logout() -> None:
    """What ssoio meets on refresh and at the end session endpoint: a refresh answers a new
    JWT access token and an ID token but no new refresh token (2.16 does not rotate online
    refresh tokens); the end session page frames the front-channel URLs too, and "Continue"
    goes to the post-logout redirect URI with the `state` given."""
    user = USERS["rtyler"]
    async with lemonldap_login_setup(additional_audiences=("ssoio-api",)) as setup:
        provider = setup.provider
        workdir, pgids = provider.workdir, provider.pgids
        sign_in = _sign_in_steps(setup.url, "rtyler", provider.login_steps("rtyler", user.login))
        observations = await run_browser({"contexts": {"rtyler": {}}, "steps": sign_in})
        assert step_errors(observations) == [], (observations, provider.logs)
        [session] = await setup.sessions(user.sub)
        assert session.refresh_token is not None
        assert session.id_token is not None

        refreshed = await _refresh(provider, session.refresh_token)
        assert refreshed.status_code == 200, refreshed.text
        body = refreshed.json()
        assert "refresh_token" not in body  # no rotation: the same one keeps working
        assert jwt_payload(body["id_token"])["sub"] == user.sub
        claims = jwt_payload(body["access_token"])
        assert claims["sub"] == user.sub
        assert "sid" not in claims
        assert sorted(claims["groups"]) == sorted(user.groups)
        assert claims["aud"] == [provider.client_id, "ssoio-api"]
        assert (await _refresh(provider, session.refresh_token)).status_code == 200

        end_session = (await provider.metadata())["end_session_endpoint"] + "?" + urlencode({
            "id_token_hint": session.id_token, "post_logout_redirect_uri": f"{setup.url}/",
            "state": "st4te", "client_id": provider.client_id,
        })  # fmt: skip
        steps = [
            *sign_in[:-2],  # (a new browser: the portal cookie of the first run is gone)
            {"op": "goto", "context": "rtyler", "url": end_session},
            *provider.continue_steps("rtyler"),
            {"op": "wait_for_url", "context": "rtyler", "pattern": f"{setup.url}/?state=st4te"},
        ]
        observations = await run_browser({"contexts": {"rtyler": {}}, "steps": steps})
        assert step_errors(observations) == [], (observations, provider.logs)
        assert [r["query"] for r in setup.recorder.requests] == [
            {"iss": provider.issuer, "sid": user.sub}
        ]
    _assert_nothing_left(workdir, pgids)
