"""RP-initiated logout with back-channel logout tokens that ssoio's own checks accept."""

from __future__ import annotations

import time

from ssoio.oidc.id_tokens import BACKCHANNEL_LOGOUT_EVENT, check_logout_token_claims, verify_signed
from tests.devidp.browser import WEB_CLIENT, Login, form_action, form_fields, login, token_request
from tests.devidp.harness import Running, http_client, running_idp
from tests.devidp.test_token_endpoint import refresh_form
from tests.devidp.verify import expectations, jwt_header, jwt_payload, providers_for


def logout_params(running: Running, login: Login, **overrides: str) -> dict[str, str]:
    params = {
        "id_token_hint": login.tokens["id_token"],
        "client_id": WEB_CLIENT,
        "post_logout_redirect_uri": f"{running.url}/",
        **overrides,
    }
    return {k: v for k, v in params.items() if v}


async def test_end_session_posts_a_logout_token_then_redirects() -> None:
    async with running_idp() as running:
        erin = await login(running, "erin")
        sid = jwt_payload(erin.tokens["access_token"])["sid"]
        async with http_client(cookies=erin.cookies) as http:
            answer = await http.get(
                f"{running.issuer}/end_session", params=logout_params(running, erin)
            )
        assert answer.status_code == 302
        assert answer.headers["location"] == f"{running.url}/"
        # The POST was made before the redirect was answered: it is already there.
        assert running.receiver.forms.qsize() == 1
        form = await running.receiver.next_form()
        (logout_token,) = form["logout_token"]
        assert jwt_header(logout_token)["typ"] == "logout+jwt"
        async with providers_for(running) as providers:
            claims = await verify_signed(
                logout_token, providers.keys, providers.settings.issuers[0]
            )
        check_logout_token_claims(claims, expectations(running, max_age_s=300), time.time())
        assert (claims["sub"], claims["sid"], claims["aud"]) == ("erin", sid, WEB_CLIENT)
        assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
        # The provider session is over: its refresh token is dead, and the cookie is cleared.
        refused = await token_request(running, refresh_form(erin.tokens["refresh_token"]))
        assert refused.json()["error"] == "invalid_grant"
        assert 'ssoio_devidp=""' in answer.headers["set-cookie"]


async def test_an_unregistered_post_logout_redirect_uri_is_refused(dev_idp: Running) -> None:
    bob = await login(dev_idp, "bob")
    elsewhere = logout_params(dev_idp, bob, post_logout_redirect_uri="http://127.0.0.1:9/")
    async with http_client() as http:
        answer = await http.get(f"{dev_idp.issuer}/end_session", params=elsewhere)
    assert answer.status_code == 400  # RP-Initiated Logout §3: MUST NOT redirect there
    assert "location" not in answer.headers
    assert "not registered" in answer.text
    assert dev_idp.receiver.forms.empty()
    refreshed = await token_request(dev_idp, refresh_form(bob.tokens["refresh_token"]))
    assert refreshed.status_code == 200  # nothing was ended


async def test_a_hint_that_is_not_an_id_token_is_refused(dev_idp: Running) -> None:
    bob = await login(dev_idp, "bob")
    params = logout_params(dev_idp, bob, id_token_hint=bob.tokens["access_token"])
    params.pop("client_id")
    async with http_client() as http:
        answer = await http.get(f"{dev_idp.issuer}/end_session", params=params)
    assert answer.status_code == 400
    assert dev_idp.receiver.forms.empty()


async def test_a_failing_relying_party_does_not_stop_the_logout() -> None:
    async with running_idp() as running:
        running.receiver.status = 500
        carol = await login(running, "carol")
        async with http_client() as http:
            answer = await http.get(
                f"{running.issuer}/end_session", params=logout_params(running, carol)
            )
        assert (answer.status_code, answer.headers["location"]) == (302, f"{running.url}/")
        assert (await running.receiver.next_form())["logout_token"]


async def test_without_a_hint_the_user_confirms(dev_idp: Running) -> None:
    alice = await login(dev_idp, "alice")
    async with http_client(cookies=alice.cookies) as http:
        page = await http.get(f"{dev_idp.issuer}/end_session", params={"client_id": WEB_CLIENT})
        assert page.status_code == 200
        assert "DEVELOPMENT ONLY" in page.text
        assert dev_idp.receiver.forms.empty()
        done = await http.post(form_action(page), data=form_fields(page, confirm="yes"))
    assert done.status_code == 200
    assert "Signed out" in done.text
    assert jwt_payload((await dev_idp.receiver.next_form())["logout_token"][0])["sub"] == "alice"
