"""The node OpenID Provider peer itself: does it mint what the rest of the suite relies on?

Tokens are inspected by decoding, never verified here: verification is ssoio's job and is
tested against this provider elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest

from .provider import (
    LoginFailed,
    NodeProvider,
    ProviderError,
    jwt_header,
    jwt_payload,
)

pytestmark = pytest.mark.interop

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

# user -> (realm roles, groups, tenant, has chat scope)
REFERENCE_USERS: dict[str, tuple[list[str], list[str], str, bool]] = {
    "alice": (["admin", "staff"], ["/eng"], "acme", True),
    "bob": (["staff"], ["/sales"], "acme", True),
    "carol": ([], [], "globex", True),
    "dave": (["staff"], ["/eng"], "acme", False),
    "erin": ([], ["/sales"], "acme", True),
}


def scopes_of(claims: dict[str, Any]) -> set[str]:
    scope = claims.get("scope", "")
    assert isinstance(scope, str), "scope must be a space-separated string (RFC 9068)"
    return set(scope.split())


async def test_discovery_names_the_issuer(node_idp: NodeProvider) -> None:
    meta = await node_idp.metadata()
    assert meta["issuer"] == node_idp.issuer == f"http://127.0.0.1:{node_idp.port}"
    assert not node_idp.issuer.endswith("/")
    assert meta["jwks_uri"].startswith(node_idp.issuer)
    assert meta["end_session_endpoint"].startswith(node_idp.issuer)
    assert meta["backchannel_logout_session_supported"] is True
    assert meta["code_challenge_methods_supported"] == ["S256"]


async def test_alice_access_token_is_a_keycloak_shaped_rfc9068_jwt(node_idp: NodeProvider) -> None:
    tokens = await node_idp.user_tokens("alice")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 300
    assert tokens["id_token"]
    assert tokens["refresh_token"]

    access_token = tokens["access_token"]
    header = jwt_header(access_token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    jwks_kids = {key["kid"] for key in (await node_idp.jwks())["keys"]}
    assert header["kid"] in jwks_kids

    claims = jwt_payload(access_token)
    assert claims["iss"] == node_idp.issuer
    assert claims["sub"] == "alice"
    assert claims["aud"] == "ssoio-api"
    assert claims["client_id"] == "ssoio-web"
    assert claims["exp"] - claims["iat"] == 300
    assert isinstance(claims["jti"], str)
    assert claims["jti"]
    assert claims["scope"] == "openid profile email chat"
    assert claims["realm_access"] == {"roles": ["admin", "staff"]}
    assert claims["groups"] == ["/eng"]
    assert claims["tenant"] == "acme"
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@acme.example"
    assert claims["name"] == "Alice"
    assert isinstance(claims["sid"], str)
    assert claims["sid"]

    id_claims = jwt_payload(tokens["id_token"])
    assert id_claims["aud"] == "ssoio-web"
    assert id_claims["sub"] == "alice"
    assert id_claims["email_verified"] is True


@pytest.mark.parametrize("username", sorted(REFERENCE_USERS))
async def test_reference_users_claims(node_idp: NodeProvider, username: str) -> None:
    roles, groups, tenant, has_chat = REFERENCE_USERS[username]
    claims = jwt_payload((await node_idp.user_tokens(username))["access_token"])
    assert claims["sub"] == username
    assert claims["realm_access"] == {"roles": roles}
    assert claims["groups"] == groups
    assert claims["tenant"] == tenant
    assert claims["email"] == f"{username}@{tenant}.example"
    assert claims["name"] == username.capitalize()
    assert {"openid", "profile", "email"} <= scopes_of(claims)
    assert ("chat" in scopes_of(claims)) is has_chat


async def test_dave_never_gets_chat(node_idp: NodeProvider) -> None:
    tokens = await node_idp.user_tokens("dave", scope="openid profile email chat")
    claims = jwt_payload(tokens["access_token"])
    assert "chat" not in scopes_of(claims)
    assert claims["scope"] == "openid profile email"
    assert "chat" not in tokens.get("scope", "").split()


async def test_carol_is_in_globex(node_idp: NodeProvider) -> None:
    claims = jwt_payload((await node_idp.user_tokens("carol"))["access_token"])
    assert claims["tenant"] == "globex"
    assert claims["realm_access"] == {"roles": []}
    assert claims["groups"] == []


async def test_wrong_password_fails_clearly(node_idp: NodeProvider) -> None:
    with pytest.raises(LoginFailed, match="Invalid username or password"):
        await node_idp.user_tokens("alice", "bob-pw")
    with pytest.raises(LoginFailed, match="Invalid username or password"):
        await node_idp.user_tokens("mallory", "mallory-pw")


async def test_client_credentials_scope(node_idp: NodeProvider) -> None:
    token = await node_idp.client_credentials_token()
    assert jwt_header(token)["typ"] == "at+jwt"
    claims = jwt_payload(token)
    assert claims["aud"] == "ssoio-api"
    assert claims["iss"] == node_idp.issuer
    assert claims["client_id"] == "ssoio-backend"
    assert "ssoio:emit" in scopes_of(claims)
    assert "realm_access" not in claims
    assert claims["tenant"] == "acme"  # the backend of tenant acme

    noscope = await node_idp.client_credentials_token(
        "ssoio-backend-noscope", "ssoio-backend-noscope-secret"
    )
    noscope_claims = jwt_payload(noscope)
    assert noscope_claims["aud"] == "ssoio-api"
    assert noscope_claims["client_id"] == "ssoio-backend-noscope"
    assert "ssoio:emit" not in scopes_of(noscope_claims)

    with pytest.raises(ProviderError, match="invalid_client"):
        await node_idp.client_credentials_token(client_secret="wrong")


async def test_refresh_gives_a_new_access_token(node_idp: NodeProvider) -> None:
    tokens = await node_idp.user_tokens("bob")
    refreshed = await node_idp.refresh(tokens["refresh_token"])
    before = jwt_payload(tokens["access_token"])
    after = jwt_payload(refreshed["access_token"])
    assert after["jti"] != before["jti"]
    assert after["sub"] == "bob"
    assert after["aud"] == "ssoio-api"
    assert after["scope"] == before["scope"]
    assert after["sid"] == before["sid"]
    assert after["realm_access"] == {"roles": ["staff"]}
    assert jwt_header(refreshed["access_token"])["typ"] == "at+jwt"


async def test_key_rotation_without_restart() -> None:
    # A provider of its own: rotating the session-wide one would break other tests' tokens.
    idp = await NodeProvider.start(at_ttl=60)
    try:
        (first_kid,) = await idp.kids()
        before = await idp.user_tokens("alice")
        assert jwt_header(before["access_token"])["kid"] == first_kid
        assert (
            jwt_payload(before["access_token"])["exp"] - jwt_payload(before["access_token"])["iat"]
            == 60
        )

        new_kid = await idp.rotate_keys()
        assert new_kid != first_kid
        assert await idp.kids() == [new_kid, first_kid]
        assert {key["kid"] for key in (await idp.jwks())["keys"]} == {new_kid, first_kid}
        after = await idp.user_tokens("alice")
        assert jwt_header(after["access_token"])["kid"] == new_kid
        assert jwt_header(await idp.client_credentials_token())["kid"] == new_kid
        # Grants and refresh tokens live outside the swapped Provider: they survive rotation.
        refreshed = await idp.refresh(before["refresh_token"])
        assert jwt_header(refreshed["access_token"])["kid"] == new_kid

        newest = await idp.rotate_keys(drop_old=True)
        assert await idp.kids() == [newest]
        assert [key["kid"] for key in (await idp.jwks())["keys"]] == [newest]
        assert jwt_header((await idp.user_tokens("bob"))["access_token"])["kid"] == newest
    finally:
        await idp.stop()
    assert idp.process.returncode is not None


@dataclass
class LogoutReceiver:
    """A minimal HTTP endpoint on 127.0.0.1 that records back-channel logout POSTs."""

    url: str = ""
    bodies: asyncio.Queue[dict[str, list[str]]] = field(default_factory=asyncio.Queue)


async def _serve_logout(
    receiver: LogoutReceiver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
        length = 0
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = await asyncio.wait_for(reader.readexactly(min(length, 64 * 1024)), 5.0)
        await receiver.bodies.put(parse_qs(body.decode("utf-8")))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def logout_receiver() -> AsyncIterator[LogoutReceiver]:
    receiver = LogoutReceiver()
    server = await asyncio.start_server(
        lambda r, w: _serve_logout(receiver, r, w), host="127.0.0.1", port=0
    )
    port = server.sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/backchannel-logout"
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()


async def test_backchannel_logout_reaches_loopback_with_the_tokens_sid() -> None:
    async with logout_receiver() as receiver:
        idp = await NodeProvider.start(backchannel_logout_uri=receiver.url)
        try:
            login = await idp.login("erin")
            access_claims = jwt_payload(login.tokens["access_token"])
            await idp.end_session(login)
            form = await asyncio.wait_for(receiver.bodies.get(), 10.0)
            logout_token = form["logout_token"][0]
            assert jwt_header(logout_token)["typ"] == "logout+jwt"
            claims = jwt_payload(logout_token)
            assert claims["iss"] == idp.issuer
            assert claims["aud"] == "ssoio-web"
            assert claims["sub"] == "erin"
            assert claims["sid"] == access_claims["sid"]
            assert BACKCHANNEL_LOGOUT_EVENT in claims["events"]
            # The grant ended with the session: its refresh token is dead.
            with pytest.raises(ProviderError, match="invalid_grant"):
                await idp.refresh(login.tokens["refresh_token"])
        finally:
            await idp.stop()


async def test_start_failure_reports_stderr() -> None:
    # idp.mjs rejects a negative TTL at startup: the error must carry node's own message.
    with pytest.raises(ProviderError, match="IDP_AT_TTL must be a non-negative integer"):
        await NodeProvider.start(at_ttl=-1)
