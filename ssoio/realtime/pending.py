"""Engine.IO sessions that have not authenticated (yet, or any more), counted per client
address so one address cannot hold more than ``realtime.max_unauthenticated_per_ip``.

Addresses are ``addresses.client_key``s: an IPv6 /64 counts as one address.
"""

from __future__ import annotations

from collections.abc import Iterator

from ssoio.addresses import client_key

__all__ = ["PendingSessions"]


class PendingSessions:
    """Unauthenticated Engine.IO sessions of this node (bookkeeping only; the timers
    close those that outstay ``realtime.unauthenticated_timeout_s``)."""

    def __init__(self) -> None:
        self._by_sid: dict[str, str] = {}  # Engine.IO sid -> client_key
        self._per_address: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_sid)

    def __contains__(self, eio_sid: object) -> bool:
        return eio_sid in self._by_sid

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_sid)

    @property
    def addresses(self) -> int:
        return len(self._per_address)

    def held_by(self, ip: str) -> int:
        return self._per_address.get(client_key(ip), 0)

    def add(self, eio_sid: str, ip: str) -> bool:
        """Count ``eio_sid`` for ``ip``; False when it was counted already."""
        if eio_sid in self._by_sid:
            return False
        key = client_key(ip)
        self._by_sid[eio_sid] = key
        self._per_address[key] = self._per_address.get(key, 0) + 1
        return True

    def remove(self, eio_sid: str) -> bool:
        """Stop counting ``eio_sid``; False when it was not counted."""
        key = self._by_sid.pop(eio_sid, None)
        if key is None:
            return False
        left = self._per_address[key] - 1
        if left:
            self._per_address[key] = left
        else:
            del self._per_address[key]
        return True
