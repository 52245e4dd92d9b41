"""In-memory authorization codes and refresh tokens (authlib's model protocols).

Codes live 60 s and are used once (RFC 6749 §4.1.2); a second use also revokes the
refresh token the first one got, as §4.1.2 asks. Refresh tokens rotate on every use
(RFC 9700 §4.14.2: a public client's refresh tokens must be sender-constrained or
rotated) and die with their provider session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ssoio.clock import Clock
from ssoio.devidp.sessions import Sessions, SessionUser

__all__ = ["CODE_TTL_S", "REFRESH_TTL_S", "AuthorizationCode", "GrantStore", "RefreshToken"]

CODE_TTL_S = 60
REFRESH_TTL_S = 8 * 3600


@dataclass(slots=True)
class AuthorizationCode:
    """An issued code (``AuthorizationCodeMixin``, plus what OpenIDCode and PKCE read)."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: SessionUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    redeemed: bool = False
    refresh_token: str | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.user.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """An issued refresh token (the parts of ``TokenMixin`` the refresh grant uses)."""

    token: str
    client_id: str
    scope: str
    user: SessionUser
    expires_at: float

    def check_client(self, client: Any) -> bool:
        return bool(client.client_id == self.client_id)

    def get_scope(self) -> str:
        return self.scope


class GrantStore:
    """Codes and refresh tokens; expired ones are dropped whenever a new one is saved."""

    def __init__(self, clock: Clock, sessions: Sessions) -> None:
        self._clock = clock
        self._sessions = sessions
        self._codes: dict[str, AuthorizationCode] = {}
        self._refresh: dict[str, RefreshToken] = {}

    def save_code(self, code: AuthorizationCode) -> None:
        self._purge()
        self._codes[code.code] = code

    def find_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """The code when it is current, unused and was issued to ``client_id``."""
        found = self._codes.get(code)
        if found is None or found.client_id != client_id or found.expires_at < self._clock():
            return None
        if found.redeemed:
            if found.refresh_token:  # a replayed code: what it got is revoked too
                self._refresh.pop(found.refresh_token, None)
            return None
        return found

    def nonce_seen(self, client_id: str, nonce: str) -> bool:
        """OIDC Core §15.5.2: a nonce already bound to a code of this client is a replay."""
        return any(c.client_id == client_id and c.nonce == nonce for c in self._codes.values())

    def save_refresh(self, token: str, client_id: str, scope: str, user: SessionUser) -> None:
        self._purge()
        expires_at = self._clock() + REFRESH_TTL_S
        self._refresh[token] = RefreshToken(token, client_id, scope, user, expires_at)

    def find_refresh(self, token: str) -> RefreshToken | None:
        """The refresh token when it is current and its provider session is live."""
        found = self._refresh.get(token)
        if found is None or found.expires_at < self._clock():
            return None
        return found if self._sessions.is_live(found.user.sid) else None

    def revoke_refresh(self, token: str) -> None:
        self._refresh.pop(token, None)

    def _purge(self) -> None:
        now = self._clock()
        self._codes = {k: c for k, c in self._codes.items() if c.expires_at >= now}
        self._refresh = {k: r for k, r in self._refresh.items() if r.expires_at >= now}
