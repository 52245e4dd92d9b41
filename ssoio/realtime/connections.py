"""The live connections of this node, indexed the ways security actions need them.

Plain in-memory state, touched only from the event loop: by Socket.IO sid, by user
(issuer, sub), by IdP session (issuer, sid claim), and room membership (for presence and
for filtered delivery).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ssoio.policy.principal import Principal
from ssoio.realtime.ratelimit import TokenBucket

__all__ = ["Connection", "Connections"]

UserKey = tuple[str, str]


@dataclass(slots=True, eq=False)
class Connection:
    """One authenticated Socket.IO connection (one namespace of one client)."""

    sid: str
    namespace: str
    principal: Principal
    expires_at: float  # the token's exp
    leeway_s: float
    fingerprint: bytes  # of the current token; never the token
    ip: str
    origin: str | None
    transport: str
    bucket: TokenBucket
    web_session: str | None = None  # the ssoio browser session (cookie or handed-off token)
    session_ends_at: float = math.inf  # when that session ends at the latest
    tenant: str | None = None  # the tenant it is counted under (limits.tenants), if any
    claims: Mapping[str, Any] = field(default_factory=dict)  # to map again on a reload
    rooms: set[str] = field(default_factory=set)
    generation: int = 0  # bumped by each auth:refresh, so stale timers are ignored
    # connection state recovery (realtime.recovery): the private session id, the log's
    # head when the session began, whether it may still recover, and what a recovery
    # sends right after the CONNECT answer ([event, *args] arrays; the last offset)
    pid: str | None = None
    since: str = ""
    recoverable: bool = True
    replay: list[list[Any]] = field(default_factory=list)
    fence: str | None = None
    persisted: bool = False  # a cluster's live record of it was written

    @property
    def user(self) -> UserKey:
        return (self.principal.issuer, self.principal.subject)

    @property
    def session(self) -> UserKey | None:
        sid = self.principal.session_id
        return (self.principal.issuer, sid) if sid else None

    def expired(self, now: float) -> bool:
        return now > self.expires_at + self.leeway_s


class Connections:
    """Every live connection of this node."""

    def __init__(self) -> None:
        self._by_sid: dict[str, Connection] = {}
        self._by_user: dict[UserKey, set[str]] = {}
        self._by_session: dict[UserKey, set[str]] = {}
        self._per_tenant: dict[str, int] = {}
        self._members: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._by_sid)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._by_sid.values()))

    def get(self, sid: str) -> Connection | None:
        return self._by_sid.get(sid)

    def add(self, connection: Connection) -> None:
        self._by_sid[connection.sid] = connection
        self._index(connection)
        if connection.tenant is not None:
            self._per_tenant[connection.tenant] = self.count_of_tenant(connection.tenant) + 1

    def remove(self, sid: str) -> Connection | None:
        connection = self._by_sid.pop(sid, None)
        if connection is not None:
            self._unindex(connection)
            if connection.tenant is not None:
                left = self._per_tenant.pop(connection.tenant) - 1
                if left:
                    self._per_tenant[connection.tenant] = left
            for room in list(connection.rooms):
                self.leave(connection, room)
        return connection

    def replace_principal(self, connection: Connection, principal: Principal) -> None:
        """Re-index a connection whose token was refreshed (its sid claim may change)."""
        self._unindex(connection)
        connection.principal = principal
        self._index(connection)

    def of_user(self, user: UserKey) -> list[Connection]:
        return [self._by_sid[sid] for sid in self._by_user.get(user, ())]

    def count_of_user(self, user: UserKey) -> int:
        return len(self._by_user.get(user, ()))

    def count_of_tenant(self, tenant: str) -> int:
        return self._per_tenant.get(tenant, 0)

    def of_session(self, session: UserKey) -> list[Connection]:
        return [self._by_sid[sid] for sid in self._by_session.get(session, ())]

    def join(self, connection: Connection, room: str) -> None:
        connection.rooms.add(room)
        self._members.setdefault(room, set()).add(connection.sid)

    def leave(self, connection: Connection, room: str) -> None:
        connection.rooms.discard(room)
        members = self._members.get(room)
        if members is not None:
            members.discard(connection.sid)
            if not members:
                del self._members[room]

    def members(self, room: str) -> list[Connection]:
        return [self._by_sid[sid] for sid in sorted(self._members.get(room, ()))]

    def sizes(self) -> dict[str, int]:
        """Sizes of every internal map (for soak tests and metrics)."""
        return {
            "connections": len(self._by_sid),
            "users": len(self._by_user),
            "sessions": len(self._by_session),
            "rooms": len(self._members),
        }

    def _index(self, connection: Connection) -> None:
        self._by_user.setdefault(connection.user, set()).add(connection.sid)
        if connection.session is not None:
            self._by_session.setdefault(connection.session, set()).add(connection.sid)

    def _unindex(self, connection: Connection) -> None:
        _discard(self._by_user, connection.user, connection.sid)
        if connection.session is not None:
            _discard(self._by_session, connection.session, connection.sid)


def _discard(index: dict[UserKey, set[str]], key: UserKey, sid: str) -> None:
    sids = index.get(key)
    if sids is not None:
        sids.discard(sid)
        if not sids:
            del index[key]
