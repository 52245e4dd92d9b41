"""Browser sessions: the browser holds a signed, random session id; everything else
(tokens) stays on the server, in a pluggable store. A started, unfinished sign-in is no
session: it lives in its own short-lived cookie (``pending.py``).

The cookie is HttpOnly, SameSite=Lax, ``Secure`` whenever the public URL is https or the
mode is production, ``__Host-`` prefixed under https, and signed (itsdangerous) so junk
cookies are refused before any store lookup. A new id is issued at login (session
fixation), sessions end at ``login.session_max_age_s`` at the latest, and a session can be
ended server-side at any time (local logout, back-channel logout), unlike Starlette's
cookie sessions.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from itsdangerous import BadSignature, Signer

from ssoio.clock import Clock
from ssoio.config.model import Settings

__all__ = [
    "COOKIE_NAME",
    "CookieRules",
    "MemorySessionStore",
    "SessionCookies",
    "SessionStore",
    "WebSession",
    "effective_secret",
]

log = logging.getLogger(__name__)

COOKIE_NAME = "ssoio_session"


@dataclass(slots=True)
class WebSession:
    """One signed-in browser session (a started login is a ``PendingLogin`` instead)."""

    id: str
    created_at: float
    expires_at: float
    data: dict[str, Any] = field(default_factory=dict)  # free for extensions
    issuer: str | None = None  # the issuer's configured name, once signed in
    subject: str | None = None
    idp_session: str | None = None  # the IdP's `sid`, for back-channel logout
    access_token: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    access_expires_at: float = 0.0

    @property
    def authenticated(self) -> bool:
        return self.access_token is not None

    def __repr__(self) -> str:  # never print tokens
        return f"WebSession(subject={self.subject!r}, issuer={self.issuer!r})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> WebSession:
        """The inverse of ``as_dict`` (shared session stores keep sessions as fields)."""
        return cls(**fields)


class SessionStore(Protocol):
    """Where sessions live: memory by default, Redis when clustered."""

    async def load(self, session_id: str) -> WebSession | None: ...

    async def save(self, session: WebSession) -> None: ...

    async def delete(self, session_id: str) -> None: ...

    async def find(self, issuer: str, *, idp_session: str | None = None,
                   subject: str | None = None) -> list[str]: ...  # fmt: skip

    async def bind_token(self, fingerprint: bytes, session_id: str, until: float) -> None:
        """Remember, until ``until``, that the token of ``fingerprint`` was handed to the
        browser session ``session_id`` (the fingerprint, never the token)."""
        ...

    async def token_session(self, fingerprint: bytes) -> str | None:
        """The browser session a token was handed to (alive or not), or None."""
        ...


class MemorySessionStore:
    """Sessions of this process; expired ones are dropped on access and by a sweep.

    At most ``max_sessions`` (``login.max_sessions``): when full, the expired go first,
    then the oldest. Only a completed sign-in at the provider adds a session here.
    """

    def __init__(self, clock: Clock, max_sessions: int = 100_000) -> None:
        self._clock = clock
        self._max = max_sessions
        self._sessions: dict[str, WebSession] = {}
        self._tokens: dict[bytes, tuple[str, float]] = {}  # fingerprint -> (session, until)

    def __len__(self) -> int:
        return len(self._sessions)

    async def load(self, session_id: str) -> WebSession | None:
        session = self._sessions.get(session_id)
        if session is not None and session.expires_at <= self._clock():
            del self._sessions[session_id]
            return None
        return session

    async def save(self, session: WebSession) -> None:
        if session.id not in self._sessions and len(self._sessions) >= self._max:
            self._sweep()
        self._sessions[session.id] = session

    async def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def find(self, issuer: str, *, idp_session: str | None = None,
                   subject: str | None = None) -> list[str]:  # fmt: skip
        return [
            s.id for s in self._sessions.values()
            if s.issuer == issuer
            and (idp_session is None or s.idp_session == idp_session)
            and (subject is None or s.subject == subject)
        ]  # fmt: skip

    async def bind_token(self, fingerprint: bytes, session_id: str, until: float) -> None:
        if len(self._tokens) >= 4 * self._max:  # a few live tokens per session at most
            now = self._clock()
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            if len(self._tokens) >= 4 * self._max:  # still full: forget the oldest quarter
                self._tokens = dict(list(self._tokens.items())[self._max :])
        self._tokens[fingerprint] = (session_id, until)

    async def token_session(self, fingerprint: bytes) -> str | None:
        bound = self._tokens.get(fingerprint)
        if bound is None or bound[1] <= self._clock():
            return None
        return bound[0]

    def _sweep(self) -> None:
        now = self._clock()
        for session_id in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[session_id]
        if len(self._sessions) >= self._max:  # still full: the oldest go first
            oldest = sorted(self._sessions.values(), key=lambda s: s.created_at)
            for session in oldest[: len(oldest) // 10 + 1]:
                del self._sessions[session.id]


def effective_secret(settings: Settings) -> str:
    """``login.session_secret``, or (development only: production refuses an empty secret)
    one random secret per process, so that sessions then do not survive a restart, which is
    the honest consequence of not configuring one."""
    return settings.login.session_secret.get_secret_value() or _PROCESS_SECRET


_PROCESS_SECRET = secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class CookieRules:
    """How ssoio's cookies are written: ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, no
    ``Domain``; ``Secure`` whenever the public URL is https or the mode is production
    (``login.cookie_secure`` may force it either way); and, when ``Secure`` on an https
    public URL, the ``__Host-`` name prefix (RFC 6265bis §4.1.3.2), with which the browser
    refuses the cookie from anything but this secure origin: no sibling subdomain or
    plain-http page can plant or overwrite it (session fixation, login CSRF)."""

    secure: bool
    host_prefix: bool

    @classmethod
    def of(cls, settings: Settings) -> CookieRules:
        mode = settings.login.cookie_secure
        https = settings.server.public_url.startswith("https://")
        secure = mode == "always" or (mode == "auto" and (https or settings.mode == "production"))
        return cls(secure=secure, host_prefix=secure and https)

    def name(self, base: str) -> str:
        return f"__Host-{base}" if self.host_prefix else base

    def header(self, name: str, value: str, max_age: int) -> str:
        parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly"]
        parts.append("SameSite=Lax")  # sent on top-level navigations, not cross-site POSTs
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)


class SessionCookies:
    """Signing, reading and writing the session cookie (``ssoio_session``, or
    ``__Host-ssoio_session`` under https: see ``CookieRules``)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.login.session_secret.get_secret_value():
            log.warning("login.session_secret is empty: using a random per-process secret")
        self._signer = Signer(effective_secret(settings), salt="ssoio-session")
        self.rules = CookieRules.of(settings)
        self.secure = self.rules.secure
        self.name = self.rules.name(COOKIE_NAME)
        self.max_age = int(settings.login.session_max_age_s)

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(32)

    def sign(self, session_id: str) -> str:
        return self._signer.sign(session_id).decode("ascii")

    def unsign(self, value: str | None) -> str | None:
        """The session id in a cookie value, or ``None`` for anything forged or garbled."""
        if not value or len(value) > 256:
            return None
        try:
            return self._signer.unsign(value).decode("ascii")
        except (BadSignature, UnicodeError):
            return None

    def header(self, session_id: str | None) -> str:
        """A ``Set-Cookie`` value (an expired one when ``session_id`` is None)."""
        value, max_age = (self.sign(session_id), self.max_age) if session_id else ("", 0)
        return self.rules.header(self.name, value, max_age)


class RefreshLocks:
    """One refresh at a time per session (concurrent tabs must not race refresh tokens)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    def release(self, session_id: str) -> None:
        lock = self._locks.get(session_id)
        if lock is not None and not lock.locked():
            del self._locks[session_id]
