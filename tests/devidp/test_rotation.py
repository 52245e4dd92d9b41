"""Key rotation: new tokens use the new kid, which ssoio's key store finds on its refetch."""

from __future__ import annotations

import pytest

from ssoio.errors import AuthenticationError
from tests.devidp.browser import login, token_request
from tests.devidp.harness import http_client, running_idp
from tests.devidp.test_token_endpoint import BACKEND
from tests.devidp.verify import OffsetClock, jwt_header, providers_for


async def test_rotation_new_key_verifies_after_one_refetch() -> None:
    async with running_idp() as running:  # its own: rotating must not touch the shared one
        clock = OffsetClock()
        async with providers_for(running, clock=clock) as providers:
            issuer = providers.settings.issuers[0]
            before = (await login(running, "alice")).tokens
            await providers.verifier.verify(before["access_token"])
            assert providers.keys.status(issuer).fetches == 1

            first_kid = jwt_header(before["access_token"])["kid"]
            new_kid = running.idp.rotate_keys()
            assert new_kid != first_kid
            after = (await login(running, "alice")).tokens
            assert jwt_header(after["access_token"])["kid"] == new_kid
            assert jwt_header(after["id_token"])["kid"] == new_kid

            # Within the cool-down the unknown kid is refused without asking the IdP...
            with pytest.raises(AuthenticationError) as caught:
                await providers.verifier.verify(after["access_token"])
            assert caught.value.code == "key_unknown"
            # ...and once it has passed, one refetch brings the new key in.
            clock.offset += issuer.keys.refetch_cooldown_s
            assert (await providers.verifier.verify(after["access_token"])).claims["sub"]
            assert providers.keys.status(issuer).fetches == 2
            assert {first_kid, new_kid} <= set(providers.keys.status(issuer).kids)


async def test_the_rotation_command_over_http() -> None:
    async with running_idp() as running, http_client() as http:
        first = running.idp.keys.kids
        answer = await http.post(f"{running.issuer}/admin/rotate-keys")
        assert answer.status_code == 200
        body = answer.json()
        assert body["kids"] == [body["kid"], *first]  # the old key stays published
        jwks = (await http.get(f"{running.issuer}/jwks")).json()
        assert [key["kid"] for key in jwks["keys"]] == body["kids"]
        backend = await token_request(running, {"grant_type": "client_credentials"}, BACKEND)
        assert jwt_header(backend.json()["access_token"])["kid"] == body["kid"]
        assert (await http.get(f"{running.issuer}/admin/rotate-keys")).status_code == 405
