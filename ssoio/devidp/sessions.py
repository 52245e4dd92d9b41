"""Provider sessions: who is signed in at the development provider, in which browser.

A session has two identifiers on purpose. ``sid`` goes into tokens (OIDC Back-Channel
Logout 1.0 §2.1), so every relying party sees it; ``handle`` is the browser's cookie and
is never written anywhere else, so knowing a ``sid`` does not let anyone act as the
browser that owns it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from ssoio.clock import Clock
from ssoio.devidp.users import DevUser

__all__ = ["ProviderSession", "SessionUser", "Sessions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionUser:
    """authlib's "user": a person together with the provider session they signed in with."""

    user: DevUser
    sid: str
    auth_time: int

    def get_user_id(self) -> str:
        return self.user.username


@dataclass(slots=True)
class ProviderSession:
    """One sign-in; ``clients`` are those it issued codes to (they get logout tokens)."""

    sid: str
    handle: str
    user: DevUser
    auth_time: int
    clients: set[str] = field(default_factory=set)

    def as_user(self) -> SessionUser:
        return SessionUser(self.user, self.sid, self.auth_time)


class Sessions:
    """Live provider sessions, by ``sid`` and by browser ``handle``; in memory."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._by_sid: dict[str, ProviderSession] = {}
        self._by_handle: dict[str, str] = {}

    def sign_in(self, user: DevUser, current: ProviderSession | None) -> ProviderSession:
        """The browser's session for ``user``: its current one if that is the same user,
        otherwise a new one (the other user's session is left to its own logout)."""
        if current is not None and current.user.username == user.username:
            return current
        session = ProviderSession(
            sid=secrets.token_urlsafe(16),
            handle=secrets.token_urlsafe(32),
            user=user,
            auth_time=int(self._clock()),
        )
        self._by_sid[session.sid] = session
        self._by_handle[session.handle] = session.sid
        log.info("devidp.sign_in sub=%s sid=%s", user.username, session.sid)
        return session

    def get(self, sid: str | None) -> ProviderSession | None:
        return self._by_sid.get(sid) if sid else None

    def of_browser(self, handle: str | None) -> ProviderSession | None:
        """The session whose cookie is ``handle``, if it is still live."""
        return self.get(self._by_handle.get(handle)) if handle else None

    def is_live(self, sid: str) -> bool:
        return sid in self._by_sid

    def note_client(self, sid: str, client_id: str) -> None:
        """Remember that this session signed in to ``client_id`` (BCL 1.0 §2.7)."""
        session = self._by_sid.get(sid)
        if session is not None:
            session.clients.add(client_id)

    def end(self, sid: str) -> ProviderSession | None:
        """Forget the session; returns it when it was live."""
        session = self._by_sid.pop(sid, None)
        if session is not None:
            self._by_handle.pop(session.handle, None)
            log.info("devidp.session.ended sub=%s sid=%s", session.user.username, sid)
        return session
