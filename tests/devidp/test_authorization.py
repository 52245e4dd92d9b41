"""Discovery, keys and the authorization code flow with PKCE, by HTTP, checked by ssoio's own
verifier: the same checks the node oidc-provider peer passes (tests/interop)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from ssoio.oidc.id_tokens import check_id_token_claims, verify_signed
from tests.devidp.browser import (
    SCOPE,
    WEB_CLIENT,
    authorize_params,
    code_exchange,
    form_action,
    form_fields,
    login,
    pkce_pair,
    sign_in,
    token_request,
)
from tests.devidp.harness import Running, http_client
from tests.devidp.verify import expectations, jwt_header, jwt_payload, providers_for

# user -> (realm roles, groups, tenant, has the chat scope), as in DESIGN.md
REFERENCE_USERS: dict[str, tuple[list[str], list[str], str, bool]] = {
    "alice": (["admin", "staff"], ["/eng"], "acme", True),
    "bob": (["staff"], ["/sales"], "acme", True),
    "carol": ([], [], "globex", True),
    "dave": (["staff"], ["/eng"], "acme", False),
    "erin": ([], ["/sales"], "acme", True),
}


async def test_discovery_names_the_issuer_exactly(dev_idp: Running) -> None:
    async with http_client() as http:
        meta = (await http.get(f"{dev_idp.url}/dev-idp/.well-known/openid-configuration")).json()
    assert meta["issuer"] == dev_idp.issuer == f"{dev_idp.url}/dev-idp"
    for name in ("authorization", "token", "userinfo", "end_session"):
        assert meta[f"{name}_endpoint"].startswith(f"{dev_idp.issuer}/")
    assert meta["jwks_uri"] == f"{dev_idp.issuer}/jwks"
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"openid", "profile", "email", "chat", "ssoio:emit"} <= set(meta["scopes_supported"])


async def test_login_page_lists_the_users_and_says_development_only(dev_idp: Running) -> None:
    async with http_client() as http:
        page = await http.get(
            f"{dev_idp.issuer}/authorize", params=authorize_params(dev_idp, pkce_pair()[1])
        )
    assert page.status_code == 200
    assert "DEVELOPMENT ONLY" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for username in REFERENCE_USERS:
        assert f'name="username" value="{username}"' in page.text


async def test_alice_full_flow_passes_ssoios_checks(dev_idp: Running) -> None:
    alice = await login(dev_idp, "alice")
    assert alice.location.startswith(alice.redirect_uri + "?")
    assert alice.query["state"] == alice.state
    assert alice.query["iss"] == dev_idp.issuer  # RFC 9207
    tokens = alice.tokens
    assert (tokens["token_type"], tokens["expires_in"], tokens["scope"]) == ("Bearer", 300, SCOPE)
    assert tokens["refresh_token"]

    async with providers_for(dev_idp) as providers:
        verified = await providers.verifier.verify(tokens["access_token"])
        issuer = providers.settings.issuers[0]
        id_claims = await verify_signed(
            tokens["id_token"], providers.keys, issuer, refused_types=("at+jwt", "logout+jwt")
        )
    check_id_token_claims(id_claims, expectations(dev_idp), alice.nonce, time.time())

    claims = verified.claims
    assert jwt_header(tokens["access_token"])["typ"] == "at+jwt"
    assert (claims["iss"], claims["sub"], claims["aud"]) == (dev_idp.issuer, "alice", "ssoio-api")
    assert (claims["client_id"], claims["scope"]) == (WEB_CLIENT, SCOPE)
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"]
    assert claims["realm_access"] == {"roles": ["admin", "staff"]}
    assert (claims["groups"], claims["tenant"]) == (["/eng"], "acme")
    assert (claims["preferred_username"], claims["name"]) == ("alice", "Alice")
    assert claims["email"] == "alice@acme.example"
    assert id_claims["sid"] == claims["sid"]
    assert (id_claims["aud"], id_claims["azp"], id_claims["nonce"]) == (
        WEB_CLIENT,
        WEB_CLIENT,
        alice.nonce,
    )
    assert id_claims["at_hash"]
    assert id_claims["auth_time"] <= id_claims["iat"]
    assert id_claims["email"] == "alice@acme.example"


async def test_jwks_publishes_the_signing_kid(dev_idp: Running) -> None:
    token = (await login(dev_idp, "bob")).tokens["access_token"]
    async with http_client() as http:
        jwks = (await http.get(f"{dev_idp.issuer}/jwks")).json()
    assert jwt_header(token)["kid"] in {key["kid"] for key in jwks["keys"]}
    assert all("d" not in key for key in jwks["keys"])  # never a private member


@pytest.mark.parametrize("username", sorted(REFERENCE_USERS))
async def test_reference_users_claims(dev_idp: Running, username: str) -> None:
    roles, groups, tenant, has_chat = REFERENCE_USERS[username]
    tokens = (await login(dev_idp, username)).tokens
    async with providers_for(dev_idp) as providers:
        claims = (await providers.verifier.verify(tokens["access_token"])).claims
    assert claims["sub"] == username
    assert claims["realm_access"] == {"roles": roles}
    assert (claims["groups"], claims["tenant"]) == (groups, tenant)
    assert claims["email"] == f"{username}@{tenant}.example"
    assert ("chat" in claims["scope"].split()) is has_chat


async def test_dave_never_gets_chat(dev_idp: Running) -> None:
    tokens = (await login(dev_idp, "dave")).tokens
    assert jwt_payload(tokens["access_token"])["scope"] == "openid profile email"
    assert tokens["scope"] == "openid profile email"  # RFC 6749 §5.1: says what was granted


async def test_wrong_code_verifier_is_refused(dev_idp: Running) -> None:
    alice = await sign_in(dev_idp, "alice")
    wrong = await token_request(dev_idp, code_exchange(alice, code_verifier=pkce_pair()[0]))
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")


async def test_missing_code_verifier_is_refused(dev_idp: Running) -> None:
    alice = await sign_in(dev_idp, "alice")
    missing = await token_request(dev_idp, code_exchange(alice, code_verifier=""))
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")


async def test_a_code_is_used_once(dev_idp: Running) -> None:
    alice = await sign_in(dev_idp, "alice")
    first = await token_request(dev_idp, code_exchange(alice))
    assert first.status_code == 200
    again = await token_request(dev_idp, code_exchange(alice))
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    # RFC 6749 §4.1.2: what the first use got is revoked too.
    refresh = {"grant_type": "refresh_token", "client_id": WEB_CLIENT}
    refresh["refresh_token"] = first.json()["refresh_token"]
    assert (await token_request(dev_idp, refresh)).status_code == 400


@pytest.mark.parametrize(
    ("pkce", "description"),
    [
        ({}, "PKCE is required"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "must be S256"),
        ({"code_challenge": "x" * 43, "code_challenge_method": ""}, "must be S256"),
    ],
)
async def test_authorization_without_s256_pkce_is_refused(
    dev_idp: Running, pkce: dict[str, str], description: str
) -> None:
    params = authorize_params(dev_idp, None, **pkce)
    async with http_client() as http:
        answer = await http.get(f"{dev_idp.issuer}/authorize", params=params)
    assert answer.status_code == 302  # RFC 7636 §4.4.1: an error to the client's redirect URI
    location = answer.headers["location"]
    assert location.startswith(params["redirect_uri"] + "?")
    assert "error=invalid_request" in location
    assert description.replace(" ", "+") in location
    assert f"state={params['state']}" in location
    assert "iss=" in location  # RFC 9207 §2: error responses name the issuer too


@pytest.mark.parametrize(
    "override",
    [{"client_id": "nobody"}, {"redirect_uri": "http://127.0.0.1:9/elsewhere"}],
)
async def test_unknown_client_or_redirect_uri_gets_a_page_not_a_redirect(
    dev_idp: Running, override: dict[str, str]
) -> None:
    params = authorize_params(dev_idp, pkce_pair()[1], **override)
    async with http_client() as http:
        answer = await http.get(f"{dev_idp.issuer}/authorize", params=params)
    assert answer.status_code == 400  # RFC 6749 §4.1.2.1: never redirect to an unchecked URI
    assert "location" not in answer.headers
    assert "DEVELOPMENT ONLY" in answer.text


async def test_signing_in_as_an_unknown_user_shows_the_page_again(dev_idp: Running) -> None:
    params = authorize_params(dev_idp, pkce_pair()[1])
    async with http_client() as http:
        page = await http.get(f"{dev_idp.issuer}/authorize", params=params)
        answer = await http.post(form_action(page), data=form_fields(page, username="mallory"))
    assert answer.status_code == 400
    assert "Pick one of the listed users." in answer.text


async def test_prompt_none_reuses_the_browser_session(dev_idp: Running) -> None:
    erin = await login(dev_idp, "erin")
    params = authorize_params(dev_idp, pkce_pair()[1], prompt="none")
    async with http_client(cookies=erin.cookies) as http:
        silent = await http.get(f"{dev_idp.issuer}/authorize", params=params)
    assert silent.status_code == 302
    assert "code=" in silent.headers["location"]
    # The same request again is a replayed nonce (OIDC Core §15.5.2)...
    async with http_client(cookies=erin.cookies) as http:
        replayed = await http.get(f"{dev_idp.issuer}/authorize", params=params)
    assert "error=invalid_request" in replayed.headers["location"]
    # ...and without a provider session there is no one to sign in silently (§3.1.2.6).
    params = authorize_params(dev_idp, pkce_pair()[1], prompt="none")
    async with http_client() as http:
        refused = await http.get(f"{dev_idp.issuer}/authorize", params=params)
    assert "error=login_required" in refused.headers["location"]


async def test_an_authorization_request_by_post(dev_idp: Running) -> None:
    # OIDC Core §3.1.2.1: the parameters may come as a form; they ride along to the sign-in.
    verifier, challenge = pkce_pair()
    params = authorize_params(dev_idp, challenge)
    async with http_client() as http:
        page = await http.post(f"{dev_idp.issuer}/authorize", data=params)
        assert page.status_code == 200, page.text
        answer = await http.post(form_action(page), data=form_fields(page, username="bob"))
    assert answer.status_code == 302
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    exchange = {"grant_type": "authorization_code", "code": code, "client_id": WEB_CLIENT}
    exchange |= {"redirect_uri": params["redirect_uri"], "code_verifier": verifier}
    tokens = (await token_request(dev_idp, exchange)).json()
    assert jwt_payload(tokens["access_token"])["sub"] == "bob"
