"""ssoio's discovery, key store and verifier against the real node oidc-provider."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from ssoio.config import Settings
from ssoio.errors import AuthenticationError
from ssoio.oidc.providers import IdentityProviders
from ssoio.settings import validate_raw
from tests.support.cli import run_cli

from .provider import NodeProvider, ensure_node_modules, jwt_header, require_tool

pytestmark = pytest.mark.interop


@dataclass
class OffsetClock:
    """Real time (the provider's tokens carry real iat/exp) that a test can move ahead."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def settings_for(provider: NodeProvider, **issuer: object) -> Settings:
    table = {"name": "node", "issuer": provider.issuer, "audiences": ["ssoio-api"], **issuer}
    return validate_raw({"issuers": [table]}, {})


@pytest.mark.parametrize("user", ["alice", "bob", "carol", "dave", "erin"])
async def test_reference_users_tokens_verify(node_idp: NodeProvider, user: str) -> None:
    tokens = await node_idp.user_tokens(user)
    async with IdentityProviders(settings_for(node_idp)) as providers:
        verified = await providers.verifier.verify(tokens["access_token"])
    assert verified.claims["sub"] == user
    assert verified.issuer.name == "node"
    assert ("chat" in verified.claims["scope"].split()) is (user != "dave")


async def test_id_token_is_refused_as_access_token(node_idp: NodeProvider) -> None:
    tokens = await node_idp.user_tokens("alice")
    settings = settings_for(
        node_idp, audiences=["ssoio-api", "ssoio-web"], token_types=["at+jwt", "JWT"]
    )
    async with IdentityProviders(settings) as providers:
        with pytest.raises(AuthenticationError) as caught:
            await providers.verifier.verify(tokens["id_token"])
    assert caught.value.code == "claims_invalid"


async def test_client_credentials_token_verifies(node_idp: NodeProvider) -> None:
    token = await node_idp.client_credentials_token()
    async with IdentityProviders(settings_for(node_idp)) as providers:
        verified = await providers.verifier.verify(token)
    assert "ssoio:emit" in verified.claims["scope"].split()


async def test_wrong_audience_is_refused(node_idp: NodeProvider) -> None:
    tokens = await node_idp.user_tokens("bob")
    async with IdentityProviders(settings_for(node_idp, audiences=["other-api"])) as providers:
        with pytest.raises(AuthenticationError) as caught:
            await providers.verifier.verify(tokens["access_token"])
    assert caught.value.code == "audience_mismatch"


@pytest_asyncio.fixture(loop_scope="session")
async def rotating_idp() -> AsyncIterator[NodeProvider]:
    """A provider of its own: rotation must not change the shared one's keys."""
    require_tool("node")
    ensure_node_modules()
    provider = await NodeProvider.start()
    try:
        yield provider
    finally:
        await provider.stop()


async def test_rotation_new_key_verifies_after_one_refetch(rotating_idp: NodeProvider) -> None:
    clock = OffsetClock()
    settings = settings_for(rotating_idp)
    issuer = settings.issuers[0]
    async with IdentityProviders(settings, clock=clock) as providers:
        before = await rotating_idp.user_tokens("alice")
        await providers.verifier.verify(before["access_token"])
        assert providers.keys.status(issuer).fetches == 1

        new_kid = await rotating_idp.rotate_keys()
        after = await rotating_idp.user_tokens("alice")
        assert jwt_header(after["access_token"])["kid"] == new_kid

        # Within the cool-down the unknown kid is refused without asking the provider...
        with pytest.raises(AuthenticationError) as caught:
            await providers.verifier.verify(after["access_token"])
        assert caught.value.code == "key_unknown"
        assert providers.keys.status(issuer).fetches == 1

        # ...and once it has passed, exactly one refetch brings the new key in.
        clock.offset += issuer.keys.refetch_cooldown_s
        verified = await providers.verifier.verify(after["access_token"])
        assert verified.claims["sub"] == "alice"
        assert providers.keys.status(issuer).fetches == 2
        assert new_kid in providers.keys.status(issuer).kids

        # The old key is still published, so tokens signed before rotation still verify.
        bob = await rotating_idp.user_tokens("bob")
        await providers.verifier.verify(bob["access_token"])
        assert providers.keys.status(issuer).fetches == 2


async def test_cli_token_verify_against_real_provider(
    node_idp: NodeProvider, tmp_path: Path
) -> None:
    config = tmp_path / "ssoio.toml"
    config.write_text(
        f'[[issuers]]\nname = "node"\nissuer = "{node_idp.issuer}"\naudiences = ["ssoio-api"]\n'
    )
    alice = (await node_idp.user_tokens("alice"))["access_token"]
    erin = (await node_idp.user_tokens("erin"))["access_token"]
    command = ("token", "verify", "--config", str(config))

    single = await run_cli(*command, alice)
    assert single.status == 0, single.stderr
    line = json.loads(single.stdout)
    assert line["ok"] is True
    assert line["issuer"] == "node"
    assert line["claims"]["sub"] == "alice"

    batch = await run_cli(*command, "-", stdin=f"{alice}\n\nnot-a-token\n{erin}\n{alice[:-4]}\n")
    assert batch.status == 1
    lines = [json.loads(text) for text in batch.stdout.splitlines()]
    assert [entry["ok"] for entry in lines] == [True, False, True, False]
    assert lines[1]["code"] == "token_malformed"
    assert lines[3]["code"] == "signature_invalid"
    for token in (alice, erin):
        assert token not in batch.stdout + batch.stderr
        assert token.split(".")[2] not in batch.stdout + batch.stderr


async def test_cli_explain_verifies_a_real_token(node_idp: NodeProvider, tmp_path: Path) -> None:
    config = tmp_path / "ssoio.toml"
    config.write_text(
        f'[[issuers]]\nname = "node"\nissuer = "{node_idp.issuer}"\naudiences = ["ssoio-api"]\n'
        '[issuers.claims]\npreset = "keycloak"\nclient_id = "client_id"\n'
        'attributes = { tenant = "tenant" }\n'
        '[[rooms]]\npattern = "tenant:{tenant}:*"\njoin = "authenticated"\n'
    )
    dave = (await node_idp.user_tokens("dave"))["access_token"]
    base = ("explain", "--config", str(config), "--token", dave, "--verify")
    allowed = await run_cli(*base, "--room", "tenant:acme:general")
    assert allowed.status == 0, allowed.stderr
    assert allowed.stdout.startswith("token      verified (signature and every claim checked)")
    assert "roles    staff" in allowed.stdout
    denied = await run_cli(*base, "--room", "tenant:globex:general")
    assert denied.status == 1
    forged_token = dave[:-6] + "AAAAAA"
    forged = await run_cli(*base[:3], "--token", forged_token, "--verify", "--room", "x")
    assert forged.status == 2
    assert forged.stderr.startswith("signature_invalid")
    mistyped = await run_cli(*base, "--room", "x", dave)  # a stray token argument
    assert mistyped.status == 2
    assert dave not in mistyped.stderr
