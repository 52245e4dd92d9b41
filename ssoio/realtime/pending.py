"""Engine.IO sessions that have not authenticated (yet, or any more), counted per client
address key (``limits.GatewayLimits.address``: an address, an IPv6 /64, or a named range).

Two counts per key, because a session's age tells an office from a flood: a real client
sends its Socket.IO CONNECT within milliseconds of the Engine.IO handshake, so sessions
younger than the handshake window are *handshaking* (hundreds at once are honest behind
one NAT address at nine o'clock) and sessions older than it are *idle* (what a flood
leaves behind). ``realtime.max_unauthenticated_per_ip`` caps the idle ones,
``realtime.max_handshakes_per_ip`` the young ones, so the memory one key can hold stays
bounded by the sum whatever it sends.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["PendingSessions"]


@dataclass(slots=True)
class _Held:
    young: OrderedDict[str, float] = field(default_factory=OrderedDict)  # sid -> opened at
    idle: int = 0

    def age(self, cutoff: float) -> None:
        """Sessions opened at or before ``cutoff`` become idle (insertion order is time
        order: the clock only moves on)."""
        while self.young:
            sid, opened = next(iter(self.young.items()))
            if opened > cutoff:
                break
            del self.young[sid]
            self.idle += 1

    def __len__(self) -> int:
        return len(self.young) + self.idle


class PendingSessions:
    """Unauthenticated Engine.IO sessions of this node (bookkeeping only; the timers
    close those that outstay ``realtime.unauthenticated_timeout_s``)."""

    def __init__(self) -> None:
        self._by_sid: dict[str, str] = {}  # Engine.IO sid -> address key
        self._held: dict[str, _Held] = {}

    def __len__(self) -> int:
        return len(self._by_sid)

    def __contains__(self, eio_sid: object) -> bool:
        return eio_sid in self._by_sid

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_sid)

    @property
    def addresses(self) -> int:
        return len(self._held)

    def held_by(self, key: str, now: float, window_s: float) -> tuple[int, int]:
        """(handshaking, idle) sessions of ``key`` at ``now``: idle ones were opened
        ``window_s`` or more ago."""
        held = self._held.get(key)
        if held is None:
            return 0, 0
        held.age(now - window_s)
        return len(held.young), held.idle

    def add(self, eio_sid: str, key: str, now: float) -> bool:
        """Count ``eio_sid`` for ``key``, handshaking from ``now``; False when it was
        counted already."""
        if eio_sid in self._by_sid:
            return False
        self._by_sid[eio_sid] = key
        self._held.setdefault(key, _Held()).young[eio_sid] = now
        return True

    def remove(self, eio_sid: str) -> bool:
        """Stop counting ``eio_sid``; False when it was not counted."""
        key = self._by_sid.pop(eio_sid, None)
        if key is None:
            return False
        held = self._held[key]
        if held.young.pop(eio_sid, None) is None:
            held.idle -= 1
        if not held:
            del self._held[key]
        return True
