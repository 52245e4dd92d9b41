"""authlib's grants, bound to the in-memory store, and the OpenID Connect extension.

authlib's grant classes do the protocol (RFC 6749 §4.1, §4.4, §6; RFC 7636; OIDC Core
§3.1); these subclasses only say where codes and tokens live, plus two tightenings:
PKCE with S256 is required of every authorization request, and the ID token is built
and signed here (joserfc, the injected clock, ``sid``) rather than by authlib's
``encode_id_token``, which reads ``time.time()`` and knows nothing of provider sessions.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode

from ssoio.devidp.sessions import SessionUser
from ssoio.devidp.store import CODE_TTL_S, AuthorizationCode, GrantStore, RefreshToken
from ssoio.devidp.tokens import TokenSigner

__all__ = ["ClientGrant", "CodeGrant", "IdTokens", "PkceS256", "RefreshGrant", "new_refresh_token"]

_SECRET_OR_PKCE = ["client_secret_basic", "client_secret_post", "none"]


def _store(grant: Any) -> GrantStore:
    store: GrantStore = grant.server.grants
    return store


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """RFC 6749 §4.1; public clients may redeem codes, as PKCE stands in for a secret."""

    TOKEN_ENDPOINT_AUTH_METHODS = _SECRET_OR_PKCE

    def save_authorization_code(self, code: str, request: Any) -> None:
        user: SessionUser = request.user
        data = request.payload.data
        record = AuthorizationCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=user.user.entitled(request.scope),  # only what this user may have
            user=user,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            expires_at=self.server.clock() + CODE_TTL_S,
        )
        _store(self).save_code(record)
        self.server.sessions.note_client(user.sid, record.client_id)

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        return _store(self).find_code(code, client.client_id)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        authorization_code.redeemed = True  # kept until it expires, to detect a replay

    def authenticate_user(self, authorization_code: AuthorizationCode) -> SessionUser | None:
        user = authorization_code.user
        return user if self.server.sessions.is_live(user.sid) else None


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    """RFC 6749 §6, rotating: each use answers with a new refresh token."""

    TOKEN_ENDPOINT_AUTH_METHODS = _SECRET_OR_PKCE
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        return _store(self).find_refresh(refresh_token)

    def authenticate_user(self, refresh_token: RefreshToken) -> SessionUser:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        _store(self).revoke_refresh(refresh_token.token)


class ClientGrant(ClientCredentialsGrant):  # type: ignore[misc]
    """RFC 6749 §4.4: confidential clients only, by Basic or form credentials."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]


class PkceS256(CodeChallenge):  # type: ignore[misc]
    """RFC 7636 with S256 only, and required of every authorization request.

    authlib's ``CodeChallenge(required=True)`` requires a verifier only from public
    clients at the token endpoint and accepts ``plain``; RFC 9700 §2.1.1 asks for PKCE
    from every client, and ``plain`` protects nothing once the request is seen.
    """

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send a code_challenge (S256).")
        if data.get("code_challenge_method") != "S256":
            # RFC 7636 §4.3: an absent method means "plain", which is not offered here.
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class IdTokens(OpenIDCode):  # type: ignore[misc]
    """OIDC Core §3.1: an ID token in the code grant's token response when ``openid``."""

    def __init__(self, signer: TokenSigner, store: GrantStore) -> None:
        super().__init__(require_nonce=False)
        self._signer = signer
        self._store = store

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return self._store.nonce_seen(request.payload.client_id, nonce)

    def encode_id_token(self, token: dict[str, Any], request: Any) -> str:
        code: AuthorizationCode = request.authorization_code
        return self._signer.id_token(
            request.client.client_id, code.user, token["scope"], code.nonce, token["access_token"]
        )


def new_refresh_token(**_: Any) -> str:
    """authlib's refresh-token generator hook: an opaque random handle."""
    return secrets.token_urlsafe(32)
