"""Connection state recovery's store in Redis: any node recovers any session, also after
the node that held it was stopped or killed.

* The event log is a Redis Stream per room (``XADD`` with ``MAXLEN``, ``MINID`` by time,
  an expiry), with ids from ONE sequence over every room (the official client keeps only
  its last offset, whatever the room): one Lua script reads Redis's clock, takes the
  next id and appends, atomically. The least recently written rooms are dropped beyond
  ``recovery.max_rooms``, leaving a mark of how far they went (a recovery behind it is a
  gap, not an empty room).
* A gap is an id trimmed after the client's offset (the script keeps the newest trimmed
  id of each room): such a session is not recovered. So is one whose gap spans events
  this node delivered while it could not log them (Redis unreachable): a mark at the
  first event logged again.
* Session records are keyed by a hash of the pid (a reader of Redis learns no pid) with
  a TTL of ``recovery.max_disconnection_s``; records of live sockets are refreshed by
  their node, so a killed node's sessions stay recoverable for that long. Indexes by user,
  browser session and IdP session let a logout or kick forget sessions that are away.
* Clustered, the script that logs a room event also publishes it on the cluster bus
  (``announce``): every node, the one that sent it included, delivers it to its own
  members from its subscription. Redis runs a script at once and delivers pub/sub
  messages in publish order, so every node sends the events of the log in the log's
  order. With a separate XADD and PUBLISH two nodes could log e1, e2 and publish e2, e1:
  a client holding e2's offset would then recover without e1.
* Redis errors become ``StoreUnavailable``: connects go on, ``recovered`` is false; the
  caller delivers the event itself, unlogged (a hole: no recovery spans it).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from ssoio.realtime.recovery_log import (
    ENDING,
    ZERO,
    LoggedEvent,
    Offset,
    SessionRecord,
    StoreUnavailable,
    parse_offset,
    pid_digest,
)

__all__ = ["LOGGED", "Announce", "RedisRecoveryStore"]

LOGGED = "logged"  # the cluster bus's kind of a logged room event

_FAILURES = (RedisError, OSError, TimeoutError)
# How long an append's outcome key lives: well past the cluster client's 2 s timeout, after
# which the appending node settles it at once (a key per room event: kept short).
OUTCOME_MS = 10_000
_LETTERS = {"user": "u", "web_session": "w", "idp_session": "i"}  # revocation kind -> index

# KEYS: last id, room stream, rooms zset, hole mark, this call's outcome; ARGV: entry,
# per-room cap, keep ms, max rooms, cut-mark prefix, "1" to mark a hole at this event, the
# channel to publish it on ("": none), the message's text up to its body, the outcome key's
# time to live. Redis 7 replicates a script's effects, so TIME is allowed; a script runs at
# once, so the PUBLISH order is the log's. The outcome key (``RedisRecoveryStore.append``):
# the event's id once it ran; present before it ran (a caller that gave up fenced it): the
# script does nothing.
_APPEND = """
if redis.call('EXISTS', KEYS[5]) == 1 then return '' end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = 0
local last = redis.call('GET', KEYS[1])
if last then
  local lms, lseq = string.match(last, '^(%d+)-(%d+)$')
  if ms <= tonumber(lms) then ms = tonumber(lms); seq = tonumber(lseq) + 1 end
end
local id = string.format('%d-%d', ms, seq)
local keep = tonumber(ARGV[3])
local function cut(trimmed) redis.call('SET', ARGV[5] .. KEYS[2], trimmed, 'PX', keep * 2) end
redis.call('SET', KEYS[1], id)
local over = redis.call('XLEN', KEYS[2]) + 1 - tonumber(ARGV[2])
if over > 0 then
  local old = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', over)
  cut(old[#old][1])
end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], id, 'e', ARGV[1])
local minid = string.format('%d-0', ms - keep)
local stale = redis.call('XRANGE', KEYS[2], '-', '(' .. minid)
if #stale > 0 then
  cut(stale[#stale][1])
  redis.call('XTRIM', KEYS[2], 'MINID', minid)
end
redis.call('PEXPIRE', KEYS[2], keep * 2)
redis.call('ZADD', KEYS[3], ms, KEYS[2])
while redis.call('ZCARD', KEYS[3]) > tonumber(ARGV[4]) do
  local old = redis.call('ZPOPMIN', KEYS[3])
  local cut = string.format('%d-999999999', tonumber(old[2]))
  redis.call('SET', ARGV[5] .. old[1], cut, 'PX', keep * 2)
  redis.call('DEL', old[1])
end
if ARGV[6] == '1' then redis.call('SET', KEYS[4], id, 'PX', keep * 2) end
if ARGV[7] ~= '' then
  redis.call('PUBLISH', ARGV[7], ARGV[8] .. '{"offset":"' .. id .. '","entry":' .. ARGV[1] .. '}}')
end
redis.call('SET', KEYS[5], id, 'PX', ARGV[9])
return id
"""


# KEYS: the record, its tombstone, the end marks of its sessions (ARGV[5] of them), its
# user's two kick marks, its indexes; ARGV: the record, its TTL, the indexes' TTL, the pid's
# digest, the end marks' count, when its socket went away ("" while live). One round trip,
# and a session killed meanwhile (kick) or ended (logout), also while this save was under
# way (a kick: the socket had gone away by the kick's time), is never written back.
_SAVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local ended = tonumber(ARGV[5])
for i = 3, 2 + ended do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
local away = tonumber(ARGV[6])
for i = 3 + ended, 4 + ended do
  local kicked = tonumber(redis.call('GET', KEYS[i]))
  if away and kicked and kicked >= away then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 5 + ended, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[4])
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Announce:
    """Where the append script publishes each logged event (``ClusterBus.framing``)."""

    channel: str
    start: str  # the bus message's text up to its body
    ready: Callable[[], bool]  # this node's bus is subscribed (else it would miss its own)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class RedisRecoveryStore:
    """``realtime.recovery.RecoveryStore`` over Redis (``cluster.redis_url``)."""

    def __init__(
        self, redis: aioredis.Redis, prefix: str, keep_s: float, per_room: int, max_rooms: int,
        announce: Announce | None = None,
    ) -> None:  # fmt: skip
        self.redis, self.prefix = redis, f"{prefix}:recovery"
        self.announce = announce
        self.keep_ms = int(keep_s * 1000)
        self.per_room, self.max_rooms = per_room, max_rooms
        self._append = redis.register_script(_APPEND)
        self._save = redis.register_script(_SAVE)
        self._unlogged = False  # an append failed: the log has a hole from then on

    def _room(self, room: str) -> str:
        return f"{self.prefix}:room:{_hash(room)}"

    def _session(self, digest: str) -> str:
        return f"{self.prefix}:s:{digest}"

    def _index(self, kind: str, key: Sequence[str]) -> str:
        return f"{self.prefix}:{kind}:{_hash(chr(0).join(key))}"

    def _ended(self, kind: str, key: Sequence[str]) -> str:
        """The mark that a browser or IdP session ended (``ENDING``)."""
        return f"{self.prefix}:ended:{_LETTERS[kind]}:{_hash(chr(0).join(key))}"

    def _kicked(self, user: Sequence[str]) -> str:
        """When a user (issuer or "", sub) was last kicked."""
        return f"{self.prefix}:kicked:{_hash(chr(0).join(user))}"

    # -- the event log ----------------------------------------------------------------------

    def announcing(self) -> bool:
        """Whether ``append(announce=True)`` publishes the event to every node, this one
        included (not while this node's bus is unsubscribed: its members would miss it)."""
        return self.announce is not None and self.announce.ready()

    async def append(self, entry: LoggedEvent, announce: bool = False) -> str:
        """Log ``entry`` (and, with ``announce``, publish it in the same script): its
        offset.

        :raises StoreUnavailable: Redis could not be reached; the event is not logged
            (the caller delivers it unlogged: the next append marks the hole).
        """
        announced = self.announce if announce else None
        outcome = f"{self.prefix}:once:{secrets.token_urlsafe(12)}"
        keys = [f"{self.prefix}:last", self._room(entry.room), f"{self.prefix}:rooms",
                f"{self.prefix}:hole", outcome]  # fmt: skip
        # events were delivered without being logged (Redis unreachable from here while
        # it kept its data): no recovery may span them
        args: list[str | int] = [json.dumps(entry.as_dict(), separators=(",", ":")),
                                 self.per_room, self.keep_ms, self.max_rooms,
                                 f"{self.prefix}:cut:", "1" if self._unlogged else "0",
                                 announced.channel if announced else "",
                                 announced.start if announced else "", OUTCOME_MS]  # fmt: skip
        try:
            offset = await self._run_once(keys, args)
        except _FAILURES as exc:
            self._unlogged = True
            raise StoreUnavailable() from exc
        if offset is None:  # it timed out, and will never run
            self._unlogged = True
            raise StoreUnavailable()
        self._unlogged = False
        return offset

    async def _run_once(self, keys: list[str], args: list[str | int]) -> str | None:
        """The append script's offset, also when its answer timed out: the script may have
        run then (logged and published: delivering the event again would duplicate it on
        every node) or may still run. One command on another connection settles it: the
        outcome key (the last of ``keys``) set now is a fence (the script, should it run
        later, does nothing) and the answer is None; already set, it holds the offset."""
        try:
            return _text(await self._append(keys=keys, args=args))
        except RedisTimeout:
            ran = await self.redis.set(keys[-1], "", nx=True, get=True, px=OUTCOME_MS)
            return _text(ran) if ran else None

    async def head(self) -> str:
        try:
            last = await self.redis.get(f"{self.prefix}:last")
        except _FAILURES as exc:
            raise StoreUnavailable() from exc
        return _text(last) if last else ZERO

    async def read(self, rooms: Sequence[str], after: Offset, limit: int) -> list[LoggedEvent]:
        found: list[tuple[Offset, LoggedEvent]] = []
        start = f"({after[0]}-{after[1]}"
        try:
            hole = await self.redis.get(f"{self.prefix}:hole")
            if hole is not None and (parse_offset(_text(hole)) or (0, 0)) > after:
                raise LookupError("unlogged events")
            # One snapshot over every room: the rooms are read one after the other, and an
            # event logged in a room already read must come live, not be taken for one
            # replayed (the transport drops live events up to the last one replayed).
            head = _text(await self.redis.get(f"{self.prefix}:last") or b"0-0")
            for room in rooms:
                found += await self._read_room(room, after, start, head, limit + 1)
                if len(found) > limit:
                    raise OverflowError(limit)
        except _FAILURES as exc:
            raise StoreUnavailable() from exc
        return [event for _, event in sorted(found, key=lambda item: item[0])]

    async def _read_room(
        self, room: str, after: Offset, start: str, head: str, count: int
    ) -> list[tuple[Offset, LoggedEvent]]:
        key = self._room(room)
        # the newest id trimmed from the room's log (by its caps, or the whole log
        # dropped beyond max_rooms); Redis 7.0 does not count trims in XINFO STREAM's
        # max-deleted-entry-id
        trimmed = await self.redis.get(f"{self.prefix}:cut:{key}") or b"0-0"
        if (parse_offset(_text(trimmed)) or (0, 0)) > after:
            raise LookupError(room)
        entries: list[Any] = await self.redis.xrange(key, min=start, max=head, count=count) or []
        out = []
        for raw_id, fields in entries:
            offset = _text(raw_id)
            event = LoggedEvent.from_dict(offset, json.loads(fields[b"e"]))
            out.append((parse_offset(offset) or (0, 0), event))
        return out

    # -- session records --------------------------------------------------------------------

    async def save(self, record: SessionRecord) -> None:
        digest = pid_digest(record.pid)
        raw = {**record.as_dict(), "pid": ""}  # the pid itself is never stored
        ttl = self.keep_ms if record.disconnected_at is not None else self.keep_ms * 4 // 3
        ended = [self._ended(kind, key) for kind, key in record.sessions()]
        keys = [
            self._session(digest),
            f"{self.prefix}:dead:{digest}",
            *ended,
            *(self._kicked(user) for user in record.users()),
            *self._indexes(record),
        ]
        away = "" if record.disconnected_at is None else repr(record.disconnected_at)
        args: list[str | int] = [json.dumps(raw), ttl, self.keep_ms * 2, digest, len(ended),
                                 away]  # fmt: skip
        try:
            await self._save(keys=keys, args=args)
        except _FAILURES as exc:
            raise StoreUnavailable() from exc

    async def touch(self, pids: Sequence[str]) -> None:
        """Refresh the records of live sockets (their node is alive)."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for pid in pids:
                    pipe.pexpire(self._session(pid_digest(pid)), self.keep_ms * 4 // 3)
                await pipe.execute()
        except _FAILURES as exc:
            raise StoreUnavailable() from exc

    def _indexes(self, record: SessionRecord) -> list[str]:
        users = [self._index("u", user) for user in record.users()]
        return users + [self._index(_LETTERS[kind], key) for kind, key in record.sessions()]

    async def take(self, pid: str) -> SessionRecord | None:
        try:
            raw = await self.redis.getdel(self._session(pid_digest(pid)))
        except _FAILURES as exc:
            raise StoreUnavailable() from exc
        if raw is None:
            return None
        return SessionRecord.from_dict({**json.loads(raw), "pid": pid})

    async def kill(self, pid: str) -> None:
        await self._kill_digests([pid_digest(pid)])

    async def kill_matching(self, kind: str, key: tuple[str, ...], at: float) -> int:
        letter = _LETTERS[kind]
        try:  # (the marks before the index is read: a save under way is refused)
            if kind in ENDING:
                await self.redis.set(self._ended(kind, key), "1", px=self.keep_ms * 2)
            elif kind == "user":
                await self.redis.set(self._kicked(key), repr(at), px=self.keep_ms * 2)
            digests = [_text(d) for d in await self.redis.smembers(self._index(letter, key))]
        except _FAILURES as exc:
            raise StoreUnavailable() from exc
        await self._kill_digests(digests)
        return len(digests)

    async def _kill_digests(self, digests: Sequence[str]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for digest in digests:
                    pipe.delete(self._session(digest))
                    pipe.set(f"{self.prefix}:dead:{digest}", "1", px=self.keep_ms * 2)
                await pipe.execute()
        except _FAILURES as exc:
            raise StoreUnavailable() from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
