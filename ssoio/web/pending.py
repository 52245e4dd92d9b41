"""A started sign-in, between ``/auth/login`` and ``/auth/callback``, kept by the browser.

The login transaction (``state``, the PKCE ``code_verifier``, the ``nonce`` and the path to
return to) travels in its own cookie, encrypted and authenticated (Fernet, keyed from
``login.session_secret``) and short-lived (``login.login_timeout_s``). So an anonymous
``GET /auth/login`` stores nothing on the server: a flood of them can neither fill the
session store nor evict a signed-in session, and the callback may land on any node of a
cluster. The verifier is encrypted, not only signed: RFC 7636 §1 relies on it staying
secret from whoever sees the authorization code.

State is bound to the browser (RFC 6749 §10.12, OIDC Core §3.1.2.1): the callback's
``state`` must equal the cookie's, and the cookie is cleared once a callback used it; the
provider refuses a code twice (RFC 6749 §4.1.2), so a replayed cookie gains nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from ssoio.clock import Clock
from ssoio.config.model import Settings
from ssoio.web.sessions import CookieRules, effective_secret

__all__ = ["LOGIN_COOKIE", "PendingLogin", "PendingLogins"]

LOGIN_COOKIE = "ssoio_login"
_MAX_COOKIE_CHARS = 2048  # a sealed transaction is ~400; anything longer is not ours


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """One login transaction; fresh random values for every ``/auth/login``."""

    state: str
    code_verifier: str
    nonce: str
    next_path: str

    @classmethod
    def start(cls, next_path: str) -> PendingLogin:
        # RFC 7636 §4.1: a verifier of 43-128 unreserved characters (here 64, 384 bits)
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(48),
                   secrets.token_urlsafe(24), next_path)  # fmt: skip

    @property
    def code_challenge(self) -> str:
        """RFC 7636 §4.2, S256: BASE64URL(SHA256(ASCII(code_verifier))), unpadded."""
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def __repr__(self) -> str:  # never print the verifier
        return f"PendingLogin(next_path={self.next_path!r})"


class PendingLogins:
    """Sealing, opening and writing the pre-login cookie."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        secret = effective_secret(settings)
        key = hashlib.sha256(f"ssoio-pending-login:{secret}".encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._clock = clock
        self.max_age = int(settings.login.login_timeout_s)
        self.rules = CookieRules.of(settings)
        self.name = self.rules.name(LOGIN_COOKIE)

    def seal(self, pending: PendingLogin) -> str:
        body = json.dumps([pending.state, pending.code_verifier, pending.nonce,
                           pending.next_path]).encode()  # fmt: skip
        return self._fernet.encrypt_at_time(body, int(self._clock())).decode("ascii")

    def open(self, value: str | None) -> PendingLogin | None:
        """The transaction in a cookie value; None when absent, forged, garbled or older
        than ``login.login_timeout_s``."""
        if not value or len(value) > _MAX_COOKIE_CHARS:
            return None
        try:
            body = self._fernet.decrypt_at_time(value, self.max_age, int(self._clock()))
            fields = json.loads(body)
        except (InvalidToken, ValueError):
            return None
        if not (isinstance(fields, list) and len(fields) == 4
                and all(isinstance(f, str) for f in fields)):  # fmt: skip
            return None
        return PendingLogin(*fields)

    def header(self, pending: PendingLogin | None) -> str:
        """A ``Set-Cookie`` value; an expired one (to clear it) when ``pending`` is None."""
        if pending is None:
            return self.rules.header(self.name, "", 0)
        return self.rules.header(self.name, self.seal(pending), self.max_age)
