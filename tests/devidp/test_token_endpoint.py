"""Refresh tokens, client credentials and userinfo."""

from __future__ import annotations

import httpx
import pytest

from ssoio.errors import AuthenticationError
from tests.devidp.browser import WEB_CLIENT, login, token_request
from tests.devidp.harness import Running, http_client
from tests.devidp.verify import jwt_header, jwt_payload, providers_for

BACKEND = httpx.BasicAuth("ssoio-backend", "ssoio-backend-secret")


def refresh_form(refresh_token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": WEB_CLIENT}


async def test_refresh_gives_a_new_access_token_and_rotates(dev_idp: Running) -> None:
    tokens = (await login(dev_idp, "bob")).tokens
    answer = await token_request(dev_idp, refresh_form(tokens["refresh_token"]))
    assert answer.status_code == 200, answer.text
    refreshed = answer.json()
    before, after = jwt_payload(tokens["access_token"]), jwt_payload(refreshed["access_token"])
    assert after["jti"] != before["jti"]
    assert (after["sub"], after["sid"], after["scope"]) == ("bob", before["sid"], before["scope"])
    assert after["realm_access"] == {"roles": ["staff"]}
    async with providers_for(dev_idp) as providers:
        await providers.verifier.verify(refreshed["access_token"])
    # RFC 9700 §4.14.2: a public client's refresh token is rotated; the old one is dead.
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    reused = await token_request(dev_idp, refresh_form(tokens["refresh_token"]))
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


async def test_refresh_may_narrow_the_scope_but_not_widen_it(dev_idp: Running) -> None:
    tokens = (await login(dev_idp, "dave")).tokens
    wider = refresh_form(tokens["refresh_token"]) | {"scope": "openid chat"}
    refused = await token_request(dev_idp, wider)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_scope")
    narrower = refresh_form(tokens["refresh_token"]) | {"scope": "openid"}
    answer = await token_request(dev_idp, narrower)
    assert jwt_payload(answer.json()["access_token"])["scope"] == "openid"


async def test_client_credentials_with_the_emit_scope(dev_idp: Running) -> None:
    answer = await token_request(
        dev_idp, {"grant_type": "client_credentials", "scope": "ssoio:emit"}, BACKEND
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert "refresh_token" not in answer.json()  # RFC 6749 §4.4.3
    assert jwt_header(token)["typ"] == "at+jwt"
    async with providers_for(dev_idp) as providers:
        claims = (await providers.verifier.verify(token)).claims
    assert (claims["sub"], claims["client_id"], claims["aud"]) == (
        "ssoio-backend",
        "ssoio-backend",
        "ssoio-api",
    )
    assert claims["scope"] == "ssoio:emit"
    assert "realm_access" not in claims


async def test_client_credentials_without_the_emit_scope(dev_idp: Running) -> None:
    # Scopes are granted when asked for: a token asked without one carries none.
    answer = await token_request(dev_idp, {"grant_type": "client_credentials"}, BACKEND)
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    async with providers_for(dev_idp) as providers:
        claims = (await providers.verifier.verify(token)).claims
    assert "ssoio:emit" not in claims.get("scope", "").split()


async def test_client_credentials_by_post_and_refused_secrets(dev_idp: Running) -> None:
    posted = {
        "grant_type": "client_credentials",
        "scope": "ssoio:emit",
        "client_id": "ssoio-backend",
        "client_secret": "ssoio-backend-secret",
    }
    assert (await token_request(dev_idp, posted)).status_code == 200  # client_secret_post
    wrong = httpx.BasicAuth("ssoio-backend", "wrong")
    refused = await token_request(dev_idp, {"grant_type": "client_credentials"}, wrong)
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    public = {"grant_type": "client_credentials", "client_id": WEB_CLIENT}
    refused = await token_request(dev_idp, public)  # RFC 6749 §4.4: confidential clients only
    assert refused.json()["error"] == "invalid_client"


async def test_userinfo(dev_idp: Running) -> None:
    tokens = (await login(dev_idp, "carol")).tokens
    async with http_client() as http:
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        info = await http.get(f"{dev_idp.issuer}/userinfo", headers=bearer)
        anonymous = await http.get(f"{dev_idp.issuer}/userinfo")
    assert info.status_code == 200, info.text
    assert info.json() == {
        "sub": "carol",
        "name": "Carol",
        "preferred_username": "carol",
        "email": "carol@globex.example",
        "email_verified": True,
    }
    assert anonymous.status_code == 401


async def test_an_id_token_is_not_an_access_token(dev_idp: Running) -> None:
    tokens = (await login(dev_idp, "alice")).tokens
    async with providers_for(
        dev_idp, audiences=["ssoio-api", WEB_CLIENT], token_types=["at+jwt", "JWT"]
    ) as providers:
        with pytest.raises(AuthenticationError) as caught:
            await providers.verifier.verify(tokens["id_token"])
    assert caught.value.code == "claims_invalid"
