"""Soak run: thousands of churning connections against one ssoio node and a real provider.

One ssoio node (``servers/soak_node.py``: ``config/ssoio.example.toml`` pointed at the
node OpenID Provider of ``tests/interop``, pinned to core 0) serves a few thousand
concurrent Socket.IO clients (this process, with the provider, on core 1) for
``--minutes``. Each of ``--clients`` slots runs one client after another; every client
connects with a real access token of one of the provider's five users, does some work
and leaves, and the next one takes its place. Clients draw a role:

* ``normal``: joins a tenant room (staff also the staff room), chats (and waits for its
  own message to come back), lists presence, moves between rooms; refreshes in-band when
  ``auth:expiring`` arrives; leaves after a random lifetime by closing the websocket, by
  a Socket.IO disconnect, or by a Socket.IO disconnect after which it keeps the Engine.IO
  session open until the server closes it (``realtime.unauthenticated_timeout_s``);
* ``expiring``: connects with a token close to its expiry and never refreshes: it must
  get ``auth:expiring`` (``expiry_warning_s`` before ``exp``), then ``auth:revoked
  {code: token_expired}`` (at ``exp`` + the issuer's leeway) and a disconnect;
* ``refreshing``: the same, but answers ``auth:expiring`` with ``auth:refresh`` and a
  newer token, then must stay connected past the first token's expiry (and leeway);
* ``hostile``: one of ``HOSTILE`` (forged, expired or malformed tokens, a token in the
  query string, a forged session cookie, an unknown namespace, never-authenticating
  websocket and polling sessions, garbage packets, oversized messages, reserved and
  malformed events, a refresh to another user, an event flood, policy probes).

Tokens come from the provider (``tests/interop/provider.py``'s ``NodeProvider``, with
``--at-ttl``): ``--logins-per-user`` logins per user at start, then a background task
redeems their refresh tokens round-robin every ``--refresh-every`` seconds per grant, so
the pool always spans a full token lifetime. Forged tokens are signed with a key of this
script.

Every outcome is counted and classified. A **valid client refused** is a failure: a
connect refused with a valid, unexpired token, an ack error other than the expected
policy denials, an unexpected ``auth:revoked``/disconnect/close of a valid client, a
missing ack. Hostile attempts whose outcome is not the expected one are failures too.

Phases: the provider and the node start; a warm-up (``--warmup`` seconds of the same
mix with fewer slots, every hostile kind at least once) is closed and left to settle,
the node collects garbage (its wrapper's ``POST /__soak/gc``) and the start figures are
read (``GET /__soak/stats``); then the soak (slots started over ``--ramp`` seconds,
stats sampled every ``--sample`` seconds); then every client leaves, ``--settle``
seconds pass (more than ``unauthenticated_timeout_s``, and more than ``ping_interval_s``:
python-engineio leaves each closed session's ping task asleep until its next ping was
due), the node collects garbage
again and the end figures are compared with the start. The report (machine,
parameters, figures, each bound and whether it held) goes to stdout and
``results/soak.md``.

Every wait is bounded; the node runs with PR_SET_PDEATHSIG and is stopped on exit, the
provider's node process is terminated on exit (SIGINT/SIGTERM included).

Run: ``.venv/bin/python benchmarks/soak.py [--minutes 5] [--clients 2000]``
(``--without KIND ...`` leaves hostile kinds out; ``--tracemalloc`` has the node list the
allocation sites that grew; ``--node-log FILE`` keeps the node's log.)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # tests.interop.provider and benchmarks.* by package name
    sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import b64, cpu_seconds  # noqa: E402
from benchmarks.realtime import (  # noqa: E402
    Child,
    free_port,
    machine_line,
    pin,
    raise_file_limit,
)

if TYPE_CHECKING:
    from tests.interop.provider import NodeProvider

RESULTS = HERE / "results" / "soak.md"
EXAMPLE = ROOT / "config" / "ssoio.example.toml"
SERVER_CORE, LOAD_CORE = 0, 1
T = TypeVar("T")

# The provider's reference users: tenant, staff role, chat scope (dave is denied "chat").
USERS: dict[str, tuple[str, bool, bool]] = {
    "alice": ("acme", True, True),
    "bob": ("acme", True, True),
    "carol": ("globex", False, True),
    "dave": ("acme", True, False),
    "erin": ("acme", False, True),
}
ADMINS = frozenset({"alice"})
RESERVED = (
    "connect",
    "disconnect",
    "connect_error",
    "disconnecting",
    "newListener",
    "removeListener",
)
HOSTILE = (
    "forged_signature",
    "unknown_kid",
    "alg_none",
    "wrong_issuer",
    "garbage_token",
    "expired_token",
    "query_token",
    "no_token",
    "forged_cookie",
    "unknown_namespace",
    "idle_websocket",
    "idle_polling",
    "garbage_before_auth",
    "garbage_after_auth",
    "oversized",
    "reserved_events",
    "malformed_events",
    "cross_user_refresh",
    "event_flood",
    "policy_probe",
    # hardening round two (#14): the edges below Socket.IO
    "client_close",
    "huge_headers",
    "long_url",
    "slow_headers",
    "jsonp_no_slash",
    "polling_packets",
    "big_frame",
    "cross_site_polling",
    "login_flood",
)
ROLES = ("normal", "expiring", "refreshing", "hostile")


# -- the configuration the node runs ------------------------------------------------------------


@dataclass(frozen=True)
class NodeConfig:
    """What the clients need to know of the example configuration (read from the file)."""

    leeway_s: float
    unauthenticated_timeout_s: float
    max_payload_bytes: int
    events_burst: int
    cache_size: int
    ping_interval_s: float
    ping_timeout_s: float

    @classmethod
    def read(cls) -> NodeConfig:
        doc = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
        realtime = doc["realtime"]
        return cls(
            leeway_s=float(doc["issuers"][0].get("leeway_s", 30)),
            unauthenticated_timeout_s=float(realtime["unauthenticated_timeout_s"]),
            max_payload_bytes=int(realtime["max_payload_bytes"]),
            events_burst=int(doc["limits"]["events_per_connection"]["burst"]),
            cache_size=int(doc["tokens"]["cache_size"]),
            ping_interval_s=float(realtime["ping_interval_s"]),
            ping_timeout_s=float(realtime["ping_timeout_s"]),
        )


# -- counting -----------------------------------------------------------------------------------


@dataclass
class Tally:
    """Every outcome of one phase."""

    counts: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    hostile: dict[str, Counter[str]] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    failure_examples: list[str] = field(default_factory=list)
    anomalies: Counter[str] = field(default_factory=Counter)
    lapses: Counter[str] = field(default_factory=Counter)  # expiry not enforced
    anomaly_examples: list[str] = field(default_factory=list)
    connect_latency: list[float] = field(default_factory=list)
    ws_close_lag: list[float] = field(default_factory=list)  # session closed -> ws closed
    presented_exp: dict[str, float] = field(default_factory=dict)  # valid token -> exp

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def fail(self, role: str, what: str, detail: str = "") -> None:
        """A valid client refused, dropped or left without an answer."""
        self.failures[f"{role}: {what}"] += 1
        if len(self.failure_examples) < 30:
            self.failure_examples.append(f"{role}: {what}" + (f" ({detail})" if detail else ""))

    def odd(self, what: str, detail: str = "") -> None:
        """Something worth reporting that refuses no valid client (timing, delivery)."""
        self.anomalies[what] += 1
        if len(self.anomaly_examples) < 30:
            self.anomaly_examples.append(what + (f" ({detail})" if detail else ""))

    def lapse(self, what: str, detail: str = "") -> None:
        """Token expiry not enforced: no warning, no revocation, an expired token served."""
        self.lapses[what] += 1
        if len(self.anomaly_examples) < 30:
            self.anomaly_examples.append(what + (f" ({detail})" if detail else ""))

    def hostile_outcome(self, kind: str, outcome: str) -> None:
        self.hostile.setdefault(kind, Counter())[outcome] += 1


# -- the Socket.IO protocol over one websocket -------------------------------------------------


class Closed(Exception):
    """The connection closed before the awaited packet arrived."""


class Conn:
    """One Engine.IO v4 session over a websocket, speaking Socket.IO by hand.

    A reader task answers pings and files every packet: connect answers per namespace,
    acks by id, events by name (with their arrival time, epoch seconds), the server's
    namespace disconnect (``41``) and the close of the websocket.
    """

    def __init__(self, ws: ClientConnection, received: Counter[str], live: set[Conn]) -> None:
        self.ws = ws
        self.received = received
        self.live = live
        self.ids = itertools.count(1)
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.answers: dict[str, asyncio.Future[tuple[bool, Any]]] = {}
        self.events: dict[str, list[tuple[float, Any]]] = {}
        self.texts: set[str] = set()  # chat:message texts seen
        self.chat_at: list[float] = []  # when each chat:message arrived
        self.changed = asyncio.Event()
        self.kicked_at: float | None = None
        self.closed_at: float | None = None  # the websocket closed
        self.session_closed_at: float | None = None  # the Engine.IO close packet arrived
        self.malformed = 0
        self.reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        received: Counter[str],
        live: set[Conn],
        within: float,
        headers: list[tuple[str, str]] | None = None,
    ) -> Conn:
        ws = await asyncio.wait_for(
            connect(
                url,
                compression=None,
                ping_interval=None,
                proxy=None,
                open_timeout=within,
                close_timeout=2,
                user_agent_header=None,
                additional_headers=headers,
                max_size=2**20,
            ),
            within,
        )
        try:
            first = await asyncio.wait_for(ws.recv(), within)
        except BaseException:
            await ws.close()
            raise
        if not isinstance(first, str) or not first.startswith("0{"):
            await ws.close()
            raise Closed(f"not an Engine.IO open packet: {str(first)[:80]!r}")
        conn = cls(ws, received, live)
        live.add(conn)
        conn.reader = asyncio.create_task(conn._read())
        return conn

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if not isinstance(message, str):
                    continue
                if message == "2":
                    await self.ws.send("3")
                elif message == "1":  # Engine.IO close: the server ended the session
                    self.session_closed_at = time.time()
                elif message.startswith("4"):
                    try:
                        self._packet(message)
                    except (ValueError, IndexError, TypeError, KeyError):
                        self.malformed += 1
                self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed_at = time.time()
            self.live.discard(self)
            for future in [*self.acks.values(), *self.answers.values()]:
                if not future.done():
                    future.set_exception(Closed("the connection closed"))
                    future.exception()  # retrieved: nobody may be waiting any more
            self.changed.set()

    def _packet(self, message: str) -> None:
        kind, rest, namespace = message[1], message[2:], "/"
        if rest.startswith("/"):
            namespace, _, rest = rest.partition(",")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        ack_id = int(rest[:digits]) if digits else None
        body: Any = json.loads(rest[digits:]) if rest[digits:] else None
        if kind in "04":
            answer = self.answers.get(namespace)
            if answer is not None and not answer.done():
                answer.set_result((kind == "0", body))
        elif kind == "1":
            if namespace == "/":
                self.kicked_at = time.time()
        elif kind == "2":
            name = str(body[0])
            self.received[name] += 1
            if name == "chat:message":
                self.texts.add(str(body[1].get("text")))
                self.chat_at.append(time.time())
            else:
                self.events.setdefault(name, []).append((time.time(), body[1:]))
        elif kind == "3" and ack_id is not None:
            future = self.acks.get(ack_id)
            if future is not None and not future.done():
                future.set_result(body[0] if body else None)

    def first(self, name: str) -> tuple[float, Any] | None:
        """The first ``name`` event (arrival time, its arguments), if any arrived."""
        seen = self.events.get(name)
        return seen[0] if seen else None

    def seen(self, name: str) -> int:
        return len(self.events.get(name, ()))

    async def send(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except ConnectionClosed as exc:
            raise Closed("the connection closed") from exc

    async def connect(
        self, auth: dict[str, Any] | None, within: float, namespace: str = "/"
    ) -> tuple[bool, Any]:
        """Socket.IO CONNECT; (True, {sid}) or (False, {message, data: {code, message}})."""
        future: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        self.answers[namespace] = future
        prefix = "" if namespace == "/" else f"{namespace},"
        body = "" if auth is None else json.dumps(auth, separators=(",", ":"))
        if self.closed:
            raise Closed("the connection closed")
        await self.send(f"40{prefix}{body}")
        return await asyncio.wait_for(future, within)

    def packet(self, name: str, *payload: Any) -> tuple[int, str]:
        ack_id = next(self.ids)
        return ack_id, f"42{ack_id}" + json.dumps([name, *payload], separators=(",", ":"))

    async def call(self, name: str, payload: Any, within: float) -> Any:
        """An event with an ack; the ack's first argument."""
        return await self.call_raw(*self.packet(name, payload), within=within)

    async def call_raw(self, ack_id: int, text: str, within: float) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[ack_id] = future
        try:
            if self.closed:
                raise Closed("the connection closed")
            await self.send(text)
            return await asyncio.wait_for(future, within)
        finally:
            self.acks.pop(ack_id, None)

    async def wait(
        self, check: Callable[[], T | None], within: float, stop: asyncio.Event
    ) -> T | None:
        """Until ``check()`` gives something (returned), the connection closes, ``stop``
        is set or ``within`` passes (None)."""
        deadline = time.monotonic() + within
        while True:
            result = check()
            if result is not None or self.closed or stop.is_set():
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 2.0))

    async def wait_closed(self, within: float, session: bool = True) -> bool:
        """Until the server ends the Engine.IO session (its close packet, or the websocket
        closing) or, with ``session=False``, until the websocket itself closes."""
        deadline = time.monotonic() + within
        while not (self.closed or (session and self.session_closed_at is not None)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        if self.reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.reader), 5)
            except (TimeoutError, Exception):
                self.reader.cancel()
        self.live.discard(self)


# -- tokens -------------------------------------------------------------------------------------


def unverified(token: str, part: int) -> dict[str, Any]:
    piece = token.split(".")[part]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4)))
    return decoded


@dataclass(frozen=True, slots=True)
class Minted:
    user: str
    token: str
    exp: float

    def remaining(self) -> float:
        return self.exp - time.time()


@dataclass(slots=True)
class Grant:
    user: str
    refresh_token: str


class TokenPool:
    """Real access tokens per user, kept fresh by redeeming refresh tokens."""

    def __init__(self, provider: NodeProvider, leeway_s: float, rng: random.Random) -> None:
        self.provider = provider
        self.leeway_s = leeway_s
        self.rng = rng
        self.tokens: dict[str, list[Minted]] = {user: [] for user in USERS}
        self.grants: list[Grant] = []
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.header_kid = ""
        self.template: dict[str, Any] = {}

    def add(self, user: str, token: str) -> Minted:
        claims = unverified(token, 1)
        minted = Minted(user, token, float(claims["exp"]))
        self.tokens[user].append(minted)
        self.tokens[user].sort(key=lambda m: m.exp)
        self.counts["tokens minted"] += 1
        if not self.template:
            self.header_kid, self.template = str(unverified(token, 0).get("kid")), claims
        return minted

    async def login(self, user: str) -> Grant:
        answer = await self.provider.user_tokens(user)
        self.counts["logins"] += 1
        self.add(user, str(answer["access_token"]))
        return Grant(user, str(answer["refresh_token"]))

    async def fill(self, logins_per_user: int) -> None:
        for _ in range(logins_per_user):
            for user in USERS:
                self.grants.append(await self.login(user))

    async def refresh_loop(self, every: float) -> None:
        """Redeem one grant's refresh token every ``every / len(grants)`` seconds."""
        for grant in itertools.cycle(self.grants):
            await asyncio.sleep(every / len(self.grants))
            try:
                answer = await asyncio.wait_for(self.provider.refresh(grant.refresh_token), 15)
                grant.refresh_token = str(answer.get("refresh_token") or grant.refresh_token)
                self.add(grant.user, str(answer["access_token"]))
                self.counts["refresh grants"] += 1
            except Exception as exc:  # the provider's answer is reported, the pool goes on
                self.counts["refresh errors"] += 1
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                with contextlib.suppress(Exception):
                    fresh = await asyncio.wait_for(self.login(grant.user), 15)
                    grant.refresh_token = fresh.refresh_token
            self.prune()

    def prune(self) -> None:
        horizon = time.time() - self.leeway_s - 300
        for user, minted in self.tokens.items():
            if minted and minted[0].exp < horizon:
                self.tokens[user] = [m for m in minted if m.exp >= horizon]

    def freshest(self, user: str) -> Minted:
        return self.tokens[user][-1]

    def pick(self, user: str, min_remaining: float) -> Minted:
        """A random token of ``user`` valid for at least ``min_remaining`` seconds."""
        now = time.time()
        fit = [m for m in self.tokens[user] if m.exp - now >= min_remaining]
        if not fit:
            self.counts["pool had no token that fresh"] += 1
            return self.freshest(user)
        return self.rng.choice(fit)

    def window(self, user: str, low: float, high: float) -> Minted:
        """A token with ``low`` to ``high`` seconds left, else the least fresh above
        ``low``, else the freshest."""
        now = time.time()
        above = [m for m in self.tokens[user] if m.exp - now >= low]
        fit = [m for m in above if m.exp - now <= high]
        if fit:
            return self.rng.choice(fit)
        return above[0] if above else self.freshest(user)

    def stale(self, user: str) -> Minted | None:
        """A token already past exp + leeway (for the expired-token hostile)."""
        now = time.time()
        old = [m for m in self.tokens[user] if m.exp + self.leeway_s + 2 < now]
        return self.rng.choice(old) if old else None

    async def fresher(self, user: str, than: float, within: float) -> Minted | None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.freshest(user).exp > than:
                return self.freshest(user)
            await asyncio.sleep(0.25)
        return None


class Forger:
    """Tokens no provider issued, for the hostile clients."""

    def __init__(self, pool: TokenPool) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pool = pool

    def token(self, kind: str, user: str) -> str:
        now = int(time.time())
        claims = {
            **self.pool.template,
            "sub": user,
            "preferred_username": user,
            "iat": now,
            "exp": now + 60,
            "jti": b64(os.urandom(12)),
        }
        kid = self.pool.header_kid
        if kind == "unknown_kid":
            kid = b64(os.urandom(9))
        if kind == "wrong_issuer":
            claims["iss"] = "https://idp.attacker.invalid"
        if kind == "alg_none":
            header = {"alg": "none", "typ": "at+jwt", "kid": kid}
            return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."
        header = {"alg": "RS256", "typ": "at+jwt", "kid": kid}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(signature)}"


# -- what every client shares -------------------------------------------------------------------


@dataclass
class Ctx:
    args: argparse.Namespace
    cfg: NodeConfig
    url: str
    base: str
    pool: TokenPool
    forger: Forger
    http: httpx.AsyncClient
    rng: random.Random
    tally: Tally = field(default_factory=Tally)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    live: set[Conn] = field(default_factory=set)
    deadline: float = 0.0  # monotonic time at which no new client starts
    kinds: tuple[str, ...] = HOSTILE  # the hostile kinds drawn
    traced: list[str] = field(default_factory=list)  # the node's tracemalloc growth
    step: float = 15.0  # bound of one connect or ack

    async def pause(self, seconds: float) -> bool:
        """Sleep, unless the run stops first (True)."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    async def open(self, headers: list[tuple[str, str]] | None = None, query: str = "") -> Conn:
        return await Conn.open(self.url + query, self.tally.received, self.live, self.step, headers)


def room_of(ctx: Ctx, user: str) -> str:
    return f"tenant:{USERS[user][0]}:room-{ctx.rng.randrange(ctx.args.rooms)}"


def code_of(answer: Any) -> str:
    """The refusal code of a connect error or ack body."""
    if isinstance(answer, dict):
        data = answer.get("data", answer.get("error"))
        if isinstance(data, dict):
            return str(data.get("code"))
    return f"unreadable answer {str(answer)[:80]!r}"


async def connect_valid(ctx: Ctx, role: str, minted: Minted) -> Conn | None:
    """Open and authenticate a valid client; a refusal or transport failure is counted."""
    left = minted.remaining()
    started = time.perf_counter()
    try:
        conn = await ctx.open()
    except (OSError, TimeoutError, WebSocketException, Closed) as exc:
        ctx.tally.fail(role, f"could not open a session: {type(exc).__name__}", str(exc)[:120])
        return None
    try:
        ok, answer = await conn.connect({"token": minted.token}, ctx.step)
    except (TimeoutError, Closed) as exc:
        ctx.tally.fail(role, f"no connect answer: {type(exc).__name__}")
        await conn.close()
        return None
    if not ok:
        ctx.tally.fail(
            role,
            f"connect refused: {code_of(answer)}",
            f"{minted.user}, token valid {left:.0f} s more",
        )
        await conn.close()
        return None
    ctx.tally.connect_latency.append(time.perf_counter() - started)
    ctx.tally.count("valid connections")
    ctx.tally.presented_exp[minted.token] = minted.exp
    return conn


async def ack(
    ctx: Ctx, conn: Conn, role: str, name: str, payload: Any, denied: str | None = None
) -> dict[str, Any] | None:
    """Send an event and check its ack: ``ok``, or exactly the ``denied`` code (an expected
    policy denial). Anything else refuses a valid client. Returns an ok ack's body."""
    ctx.tally.count("events sent")
    try:
        answer = await conn.call(name, payload, ctx.step)
    except TimeoutError:
        ctx.tally.fail(role, f"no ack for {name}")
        return None
    except Closed:
        ctx.tally.fail(role, f"closed by the server while waiting for the ack of {name}")
        return None
    ctx.tally.count("acks received")
    if not isinstance(answer, dict):
        ctx.tally.fail(role, f"unreadable ack for {name}", str(answer)[:80])
        return None
    if answer.get("ok") is True:
        if denied is not None:
            ctx.tally.odd(f"{name} allowed where {denied} was expected")
        return answer
    code = code_of(answer)
    if denied is not None and code == denied:
        ctx.tally.count(f"expected policy denials: {name} {code}")
        return None
    ctx.tally.fail(role, f"ack refused: {name} {code}")
    return None


def still_there(ctx: Ctx, conn: Conn, role: str) -> bool:
    """False (and a failure) when the server revoked, disconnected or closed a valid
    client."""
    revoked = conn.first("auth:revoked")
    if revoked is not None:
        ctx.tally.fail(role, f"revoked: {code_of({'data': revoked[1][0]})}")
    elif conn.kicked_at is not None:
        ctx.tally.fail(role, "disconnected by the server")
    elif conn.closed:
        ctx.tally.fail(role, "connection closed by the server")
    else:
        return True
    return False


async def chat(ctx: Ctx, conn: Conn, role: str, user: str, room: str) -> None:
    """chat:send to ``room``; the sender is a member, so its own message must come back."""
    text = f"{id(conn):x}-{next(conn.ids)}"
    may_chat = USERS[user][2]
    answer = await ack(
        ctx,
        conn,
        role,
        "chat:send",
        {"room": room, "text": text},
        None if may_chat else "forbidden",
    )
    if answer is None or not may_chat:
        return
    if await conn.wait(lambda: True if text in conn.texts else None, 10, ctx.stop):
        ctx.tally.count("own chat messages delivered")
    elif not conn.closed and not ctx.stop.is_set():
        ctx.tally.odd("own chat:message never delivered (10 s)")


async def presence(ctx: Ctx, conn: Conn, role: str, user: str, room: str) -> None:
    answer = await ack(ctx, conn, role, "presence:list", {"room": room})
    if answer is None:
        return
    members = answer.get("members")
    if not isinstance(members, list) or not any(m.get("sub") == user for m in members):
        ctx.tally.odd("presence:list without the asking user", room)


async def refresh_if_warned(
    ctx: Ctx, conn: Conn, role: str, user: str, state: dict[str, float]
) -> None:
    """A well-behaved client answers ``auth:expiring`` with ``auth:refresh``."""
    if conn.seen("auth:expiring") <= state["handled"]:
        return
    state["handled"] = conn.seen("auth:expiring")
    minted = await ctx.pool.fresher(user, state["exp"] + 1, 10)
    if minted is None:
        ctx.tally.odd("no fresher token in the pool to refresh with")
        return
    if await ack(ctx, conn, role, "auth:refresh", {"token": minted.token}) is not None:
        ctx.tally.count("in-band refreshes (normal clients, on auth:expiring)")
        ctx.tally.presented_exp[minted.token] = minted.exp
        state["exp"] = minted.exp


async def leave(ctx: Ctx, conn: Conn, role: str) -> None:
    """Go: close the websocket, or disconnect the namespace first, or disconnect it and
    keep the Engine.IO session open until the server closes it."""
    how = ctx.rng.random()
    if how < 0.7 or conn.closed:
        ctx.tally.count("left by closing the websocket")
    elif how < 0.9:
        with contextlib.suppress(Closed):
            await conn.send("41")
        ctx.tally.count("left by a Socket.IO disconnect")
    else:
        with contextlib.suppress(Closed):
            await conn.send("41")
        bound = ctx.cfg.unauthenticated_timeout_s + 4
        if await conn.wait_closed(bound):
            ctx.tally.count("left by a disconnect, lingering: session closed by the server")
        else:
            ctx.tally.odd(f"lingering Engine.IO session not closed within {bound:g} s", role)
    await conn.close()


# -- roles --------------------------------------------------------------------------------------


async def normal(ctx: Ctx, user: str) -> None:
    role = "normal"
    lifetime = min(ctx.rng.uniform(*ctx.args.lifetime), max(1.0, ctx.deadline - time.monotonic()))
    minted = ctx.pool.pick(user, 30)
    conn = await connect_valid(ctx, role, minted)
    if conn is None:
        return
    try:
        room = room_of(ctx, user)
        await ack(ctx, conn, role, "room:join", {"room": room})
        staff = USERS[user][1] and ctx.rng.random() < 0.3
        if staff:
            await ack(ctx, conn, role, "room:join", {"room": "staff"})
        end = time.monotonic() + lifetime
        state = {"handled": 0.0, "exp": minted.exp}
        while True:
            gap = ctx.rng.uniform(*ctx.args.gap)
            if time.monotonic() + gap > end:
                await ctx.pause(end - time.monotonic())
                break
            if await ctx.pause(gap):
                break
            if not still_there(ctx, conn, role):
                return
            await refresh_if_warned(ctx, conn, role, user, state)
            pick = ctx.rng.random()
            if pick < 0.5:
                await chat(ctx, conn, role, user, room)
            elif pick < 0.75:
                await presence(ctx, conn, role, user, room)
            elif pick < 0.9:
                await ack(ctx, conn, role, "room:leave", {"room": room})
                room = room_of(ctx, user)
                await ack(ctx, conn, role, "room:join", {"room": room})
            else:
                await presence(ctx, conn, role, user, "staff" if staff else f"user:{user}")
        if still_there(ctx, conn, role):
            ctx.tally.count("normal clients completed")
            await leave(ctx, conn, role)
    finally:
        await conn.close()


def expiry_window(ctx: Ctx) -> tuple[float, float]:
    warning = float(ctx.args.expiry_warning)
    return warning + 2, warning + 15


async def until_expiry(ctx: Ctx, role: str, user: str) -> tuple[Conn, Minted, str] | None:
    """Connect with a token near its expiry, join a room, wait for ``auth:expiring``."""
    minted = ctx.pool.window(user, *expiry_window(ctx))
    conn = await connect_valid(ctx, role, minted)
    if conn is None:
        return None
    room = room_of(ctx, user)
    await ack(ctx, conn, role, "room:join", {"room": room})
    await presence(ctx, conn, role, user, room)
    warn_due = minted.exp - ctx.args.expiry_warning
    warned = await conn.wait(
        lambda: conn.first("auth:expiring"), warn_due - time.time() + 10, ctx.stop
    )
    if ctx.stop.is_set():
        ctx.tally.count(f"{role} clients cut short by the end of the run")
        await conn.close()
        return None
    if warned is None:
        if not still_there(ctx, conn, role):
            await conn.close()
            return None
        ctx.tally.lapse("no auth:expiring by exp - expiry_warning_s + 10 s", role)
        return conn, minted, room
    ctx.tally.count("auth:expiring received")
    if abs(warned[0] - warn_due) > 5:
        ctx.tally.odd(
            "auth:expiring more than 5 s off exp - expiry_warning_s",
            f"{warned[0] - warn_due:+.1f} s",
        )
    return conn, minted, room


async def served_expired(ctx: Ctx, conn: Conn, role: str, user: str, minted: Minted) -> None:
    """The token is past exp + leeway and the node neither revoked nor disconnected the
    connection: does it still serve it?"""
    ctx.tally.lapse("no auth:revoked by exp + leeway + 10 s", role)
    try:
        answer = await conn.call("presence:list", {"room": f"user:{user}"}, ctx.step)
    except (TimeoutError, Closed):
        return
    late = time.time() - minted.exp - ctx.cfg.leeway_s
    after = sum(1 for at in conn.chat_at if at > minted.exp + ctx.cfg.leeway_s)
    if after:
        ctx.tally.lapse("room messages still delivered after exp + leeway", f"{after}")
        ctx.tally.count("room messages delivered to expired connections", after)
    if isinstance(answer, dict) and answer.get("ok") is True:
        ctx.tally.lapse("connection served an event after exp + leeway", f"{late:.0f} s past")
    else:
        ctx.tally.lapse(f"connection kept after exp + leeway, events refused: {code_of(answer)}")


async def expiring(ctx: Ctx, user: str) -> None:
    role = "expiring"
    found = await until_expiry(ctx, role, user)
    if found is None:
        return
    conn, minted, _room = found
    try:
        revoke_due = minted.exp + ctx.cfg.leeway_s
        revoked = await conn.wait(
            lambda: conn.first("auth:revoked"), revoke_due - time.time() + 10, ctx.stop
        )
        if revoked is None:
            if ctx.stop.is_set():
                ctx.tally.count(f"{role} clients cut short by the end of the run")
            elif still_there(ctx, conn, role):
                await served_expired(ctx, conn, role, user, minted)
            return
        at, args = revoked
        code = code_of({"data": args[0] if args else None})
        if code != "token_expired":
            ctx.tally.fail(role, f"revoked: {code}")
            return
        if at < revoke_due - 1.5:
            ctx.tally.fail(role, "revoked before exp + leeway", f"{at - revoke_due:+.1f} s")
            return
        if at > revoke_due + 5:
            ctx.tally.odd(
                "auth:revoked more than 5 s after exp + leeway", f"{at - revoke_due:+.1f} s"
            )
        ctx.tally.count("auth:revoked token_expired received")
        kicked = await conn.wait(lambda: conn.kicked_at or conn.closed_at, 5, ctx.stop)
        if kicked is None:
            ctx.tally.odd("no disconnect within 5 s of auth:revoked")
            return
        ctx.tally.count("expired clients disconnected by the server")
        if ctx.rng.random() < 0.5:
            bound = ctx.cfg.unauthenticated_timeout_s + 4
            if await conn.wait_closed(bound):
                ctx.tally.count("expired clients lingering: session closed by the server")
            else:
                ctx.tally.odd(f"expired client's Engine.IO session open after {bound:g} s")
    finally:
        await conn.close()


async def refreshing(ctx: Ctx, user: str) -> None:
    role = "refreshing"
    found = await until_expiry(ctx, role, user)
    if found is None:
        return
    conn, minted, room = found
    try:
        newer = await ctx.pool.fresher(user, minted.exp + 5, 10)
        if newer is None:
            ctx.tally.odd("no fresher token in the pool to refresh with")
            return
        answer = await ack(ctx, conn, role, "auth:refresh", {"token": newer.token})
        if answer is None:
            return
        ctx.tally.count("in-band refreshes (refreshing clients)")
        ctx.tally.presented_exp[newer.token] = newer.exp
        if abs(float(answer.get("expires_in", -1)) - newer.remaining()) > 3:
            ctx.tally.odd("auth:refresh expires_in off the new token's exp")
        past = minted.exp + ctx.cfg.leeway_s + 5
        if await ctx.pause(past - time.time()):
            ctx.tally.count(f"{role} clients cut short by the end of the run")
            return
        if not still_there(ctx, conn, role):
            return
        await chat(ctx, conn, role, user, room)
        ctx.tally.count("refreshed clients connected past their first token's expiry")
        await leave(ctx, conn, role)
    finally:
        await conn.close()


# -- hostile clients ----------------------------------------------------------------------------


def verdict(expected: bool, what: str) -> str:
    return ("expected: " if expected else "UNEXPECTED: ") + what


REFUSED_WITH: dict[str, frozenset[str]] = {
    "forged_signature": frozenset({"signature_invalid"}),
    "unknown_kid": frozenset({"key_unknown"}),
    "alg_none": frozenset({"algorithm_not_allowed", "token_malformed"}),
    "wrong_issuer": frozenset({"issuer_unknown"}),
    "garbage_token": frozenset({"token_malformed"}),
    "expired_token": frozenset({"token_expired"}),
    "query_token": frozenset({"token_malformed"}),
    "no_token": frozenset({"token_missing"}),
    "forged_cookie": frozenset({"token_missing"}),
    "unknown_namespace": frozenset({"namespace_forbidden"}),
}
GARBAGE = (
    "4",
    "4x",
    "42[",
    "49",
    "4{}",
    "40{",
    "4/admin",
    '42["chat:send",{',
    "x",
    "6",
    "5",
    "44{}",
    "43[]",
    "4" + "[" * 500,
    "42" + "9" * 40 + "[]",
)


async def bad_connect(ctx: Ctx, kind: str, user: str) -> str:
    """A connect that must be refused with one of ``REFUSED_WITH[kind]``."""
    headers: list[tuple[str, str]] | None = None
    query, namespace = "", "/"
    auth: dict[str, Any] | None = None
    if kind in ("forged_signature", "unknown_kid", "alg_none", "wrong_issuer"):
        auth = {"token": ctx.forger.token(kind, user)}
    elif kind == "garbage_token":
        auth = {"token": ctx.rng.choice(("not-a-jwt", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9"))}
    elif kind == "expired_token":
        stale = ctx.pool.stale(user)
        auth = {"token": stale.token if stale else ""}
    elif kind == "query_token":
        query, auth = f"&token={ctx.pool.pick(user, 30).token}", {}
    elif kind == "forged_cookie":
        headers = [("Cookie", f"ssoio_session={b64(os.urandom(24))}.{b64(os.urandom(20))}")]
    elif kind == "unknown_namespace":
        namespace, auth = "/admin", {"token": ctx.pool.pick(user, 30).token}
    conn = await ctx.open(headers, query)
    try:
        ok, answer = await conn.connect(auth, ctx.step, namespace)
    finally:
        await conn.close()
    if ok:
        return verdict(False, "ACCEPTED")
    code = code_of(answer)
    return verdict(code in REFUSED_WITH[kind], f"refused: {code}")


async def idle_websocket(ctx: Ctx, _kind: str, _user: str) -> str:
    """An Engine.IO session that never sends a Socket.IO CONNECT, and then keeps its
    websocket open (answering nothing) to see when the server closes that too."""
    conn = await ctx.open()
    try:
        bound = ctx.cfg.unauthenticated_timeout_s + 4
        ended = await conn.wait_closed(bound)
        if ended and not conn.closed and conn.session_closed_at is not None:
            heartbeat = ctx.cfg.ping_interval_s + ctx.cfg.ping_timeout_s
            if await conn.wait_closed(heartbeat + 10, session=False) and conn.closed_at:
                ctx.tally.ws_close_lag.append(conn.closed_at - conn.session_closed_at)
            elif not ctx.stop.is_set():
                ctx.tally.odd(f"websocket open {heartbeat + 10:g} s after the session closed")
    finally:
        await conn.close()
    return verdict(ended, session_end(conn) if ended else f"still open after {bound:g} s")


def session_end(conn: Conn) -> str:
    if conn.session_closed_at is not None:
        return "session closed by the server (Engine.IO close packet)"
    return "closed by the server (websocket closed)"


async def open_polling(ctx: Ctx) -> str:
    """A new long-polling Engine.IO session's sid, or the unexpected verdict."""
    opened = await ctx.http.get(
        f"{ctx.base}/socket.io/", params={"EIO": "4", "transport": "polling"}
    )
    first = opened.text.split("\x1e")[0]
    if opened.status_code != 200 or not first.startswith("0{"):
        return verdict(False, f"polling open answered {opened.status_code}")
    return str(json.loads(first[1:])["sid"])


async def idle_polling(ctx: Ctx, _kind: str, _user: str) -> str:
    """A long-polling Engine.IO session opened and never polled again."""
    url = f"{ctx.base}/socket.io/"
    sid = await open_polling(ctx)
    if sid.startswith("UNEXPECTED"):
        return sid
    await asyncio.sleep(ctx.cfg.unauthenticated_timeout_s + 3)
    later = await ctx.http.get(
        url,
        params={"EIO": "4", "transport": "polling", "sid": sid},
        timeout=ctx.cfg.ping_interval_s + 10,
    )
    gone = later.status_code == 400
    return verdict(gone, "session closed by the server" if gone else f"poll {later.status_code}")


async def garbage_before_auth(ctx: Ctx, _kind: str, _user: str) -> str:
    conn = await ctx.open()
    try:
        for junk in ctx.rng.sample(GARBAGE, 3):
            with contextlib.suppress(Closed):
                await conn.send(junk)
        bound = ctx.cfg.unauthenticated_timeout_s + 4
        closed = await conn.wait_closed(bound)
    finally:
        await conn.close()
    return verdict(closed, session_end(conn) if closed else f"still open after {bound:g} s")


async def authenticated(
    ctx: Ctx, kind: str, user: str, probe: Callable[[Conn], Awaitable[str]]
) -> str:
    """A hostile client holding a valid token: connect (a refusal is a failure), probe."""
    conn = await connect_valid(ctx, f"hostile {kind}", ctx.pool.pick(user, 30))
    if conn is None:
        return "not run: its valid token was refused (see failures)"
    try:
        return await probe(conn)
    finally:
        await conn.close()


async def alive(ctx: Ctx, conn: Conn, kind: str, user: str) -> bool:
    """Still connected and served after the abuse (a presence:list of its user room)."""
    answer = await ack(ctx, conn, f"hostile {kind}", "presence:list", {"room": f"user:{user}"})
    return answer is not None


async def garbage_after_auth(ctx: Ctx, kind: str, user: str) -> str:
    async def probe(conn: Conn) -> str:
        with contextlib.suppress(Closed):
            await conn.send(ctx.rng.choice(('42["chat:send",{', '42[{"x":', "4[[[", "42]")))
        closed = await conn.wait_closed(5)
        return verdict(closed, session_end(conn) if closed else "still open after 5 s")

    return await authenticated(ctx, kind, user, probe)


async def oversized(ctx: Ctx, kind: str, user: str) -> str:
    limit = ctx.cfg.max_payload_bytes

    async def probe(conn: Conn) -> str:
        room = f"tenant:{USERS[user][0]}:room-0"
        big = {"room": room, "text": "x" * (limit + 1000)}
        code = code_of(await conn.call("chat:send", big, ctx.step))
        kept = await alive(ctx, conn, kind, user)
        with contextlib.suppress(Closed):
            await conn.send(conn.packet("chat:send", {"room": room, "text": "x" * 5 * limit})[1])
        closed = await conn.wait_closed(5)
        expected = code == "payload_too_large" and kept and closed
        what = (
            f"{code} ack, connection kept, closed above the transport limit"
            if expected
            else f"ack {code}, kept {kept}, closed {closed}"
        )
        return verdict(expected, what)

    return await authenticated(ctx, kind, user, probe)


async def reserved_events(ctx: Ctx, kind: str, user: str) -> str:
    async def probe(conn: Conn) -> str:
        codes = {code_of(await conn.call(name, {}, ctx.step)) for name in RESERVED}
        kept = await alive(ctx, conn, kind, user)
        return verdict(
            codes == {"unknown_event"} and kept,
            f"acks {'/'.join(sorted(codes))}, connection kept {kept}",
        )

    return await authenticated(ctx, kind, user, probe)


async def malformed_events(ctx: Ctx, kind: str, user: str) -> str:
    async def probe(conn: Conn) -> str:
        room = f"tenant:{USERS[user][0]}:room-0"
        cases = [
            conn.packet("no:such:event", {}),
            conn.packet("presence:list", {"room": f"user:{user}"}, {"extra": 1}),
            conn.packet("room:join", {"room": "tenant:*:x y"}),
            conn.packet("chat:send", {"room": room, "text": "hi", "admin": True}),
        ]
        for template in (
            '451-{}["chat:send",{{"_placeholder":true,"num":0}}]',
            "42{}[]",
            "42{}[42,{{}}]",
        ):
            ack_id = next(conn.ids)
            cases.append((ack_id, template.format(ack_id)))
        codes = Counter([code_of(await conn.call_raw(i, text, ctx.step)) for i, text in cases])
        kept = await alive(ctx, conn, kind, user)
        expected = set(codes) == {"unknown_event", "invalid_payload"} and kept
        what = ", ".join(f"{n} {c}" for c, n in sorted(codes.items()))
        return verdict(expected, f"acks {what}, connection kept {kept}")

    return await authenticated(ctx, kind, user, probe)


async def cross_user_refresh(ctx: Ctx, kind: str, user: str) -> str:
    async def probe(conn: Conn) -> str:
        other = ctx.rng.choice([u for u in USERS if u != user])
        token = ctx.pool.pick(other, 30).token
        code = code_of(await conn.call("auth:refresh", {"token": token}, ctx.step))
        kept = await alive(ctx, conn, kind, user)  # (checks the user is still in its room)
        return verdict(code == "forbidden" and kept, f"refused: {code}, connection kept {kept}")

    return await authenticated(ctx, kind, user, probe)


async def event_flood(ctx: Ctx, kind: str, user: str) -> str:
    async def probe(conn: Conn) -> str:
        room = f"tenant:{USERS[user][0]}:flood"
        packets = [conn.packet("room:leave", {"room": room}) for _ in range(2 * burst + 20)]
        answers = await asyncio.gather(
            *(conn.call_raw(i, text, ctx.step) for i, text in packets), return_exceptions=True
        )
        codes = Counter(
            "ok" if isinstance(a, dict) and a.get("ok") else code_of(a) for a in answers
        )
        expected = set(codes) == {"ok", "rate_limited"} and codes["ok"] >= burst - 5
        return verdict(
            expected, "rate_limited after the burst" if expected else f"acks {dict(codes)}"
        )

    burst = ctx.cfg.events_burst
    return await authenticated(ctx, kind, user, probe)


async def policy_probe(ctx: Ctx, kind: str, user: str) -> str:
    user = user if user not in ADMINS else "erin"  # an admin's kick would really kick

    async def probe(conn: Conn) -> str:
        other = "globex" if USERS[user][0] == "acme" else "acme"
        probes: list[tuple[str, dict[str, Any]]] = [
            ("room:join", {"room": f"tenant:{other}:room-0"}),
            ("chat:send", {"room": f"tenant:{other}:room-0", "text": "hello"}),
            ("admin:kick", {"sub": "alice"}),
            ("broadcast_announcement", {"text": "hello"}),
        ]
        if not USERS[user][1]:
            probes.append(("room:join", {"room": "staff"}))
        codes = {code_of(await conn.call(name, body, ctx.step)) for name, body in probes}
        kept = await alive(ctx, conn, kind, user)
        return verdict(
            codes == {"forbidden"} and kept,
            f"acks {'/'.join(sorted(codes))}, connection kept {kept}",
        )

    return await authenticated(ctx, kind, user, probe)


# -- the edges below Socket.IO (#14) ------------------------------------------------------------


async def raw_request(ctx: Ctx, head: bytes, trickle_s: float = 0.0) -> tuple[bytes, bool]:
    """Send ``head`` over a plain TCP connection (one byte every ``trickle_s`` seconds when
    set, until the server closes), read until the server closes (bounded); the answer's
    bytes and whether the server closed the connection."""
    host, port = ctx.base.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), ctx.step)
    answer = b""
    try:
        if trickle_s:
            for byte in head:
                if reader.at_eof():
                    break
                writer.write(bytes([byte]))
                with contextlib.suppress(TimeoutError):
                    answer += await asyncio.wait_for(reader.read(4096), trickle_s)
        else:
            for start in range(0, len(head), 65536):
                writer.write(head[start : start + 65536])
                await writer.drain()
        while len(answer) < 65536:
            chunk = await asyncio.wait_for(reader.read(4096), ctx.step)
            if not chunk:
                return answer, True
            answer += chunk
        return answer, False
    except (ConnectionError, TimeoutError):
        return answer, reader.at_eof() or writer.is_closing()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 2)


def status_of(answer: bytes) -> int:
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


async def client_close(ctx: Ctx, _kind: str, user: str) -> str:
    """An Engine.IO CLOSE packet from the client (after a valid connect, half the time): the
    server must end the session and close the websocket, not keep it open forever."""
    if ctx.rng.random() < 0.5:
        conn = await connect_valid(ctx, "hostile client_close", ctx.pool.pick(user, 30))
        if conn is None:
            return "not run: its valid token was refused (see failures)"
    else:
        conn = await ctx.open()
    try:
        with contextlib.suppress(Closed, ConnectionClosed):
            await conn.ws.send("1")
        closed = await conn.wait_closed(5, session=False)
    finally:
        await conn.close()
    return verdict(closed, "websocket closed by the server" if closed else "open 5 s after CLOSE")


async def huge_headers(ctx: Ctx, _kind: str, _user: str) -> str:
    """256 KiB of request headers on an ordinary route: 431 and the connection closed. (The
    node reads and drops at most 1 MiB after refusing a head, then closes: a client that
    keeps sending more without reading is reset, and loses the answer.)"""
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 1000) for i in range(256))
    head = b"GET /healthz HTTP/1.1\r\nHost: soak\r\n" + filler + b"\r\n"
    answer, closed = await raw_request(ctx, head)
    status = status_of(answer)
    return verdict(status == 431 and closed, f"answered {status}, closed {closed}")


async def long_url(ctx: Ctx, _kind: str, _user: str) -> str:
    """A 1 MiB request target: 414 and the connection closed."""
    head = b"GET /healthz?" + b"q" * (1 << 20) + b" HTTP/1.1\r\nHost: soak\r\n\r\n"
    answer, closed = await raw_request(ctx, head)
    status = status_of(answer)
    return verdict(status == 414 and closed, f"answered {status}, closed {closed}")


async def slow_headers(ctx: Ctx, _kind: str, _user: str) -> str:
    """Slowloris: a request head trickled one byte a second; the server must close the
    connection at its header deadline, long before the head would be complete."""
    head = b"GET /healthz HTTP/1.1\r\nHost: soak\r\nX-Slow: " + b"s" * 120 + b"\r\n\r\n"
    started = time.monotonic()
    _answer, closed = await raw_request(ctx, head, trickle_s=1.0)
    took = time.monotonic() - started
    expected = closed and took < len(head) - 10
    return verdict(
        expected, f"closed by the server after {took:.0f} s" if closed else "never closed"
    )


async def jsonp_no_slash(ctx: Ctx, _kind: str, _user: str) -> str:
    """JSONP polling at ``/socket.io`` (no trailing slash, which the engine also serves)."""
    answer = await ctx.http.get(
        f"{ctx.base}/socket.io", params={"EIO": "4", "transport": "polling", "j": "0"}
    )
    return verdict(answer.status_code == 400, f"answered {answer.status_code}")


async def polling_packets(ctx: Ctx, _kind: str, _user: str) -> str:
    """A long-polling POST of 40 packets (python-engineio decodes at most 16 and used to
    log a stack trace): a clean 400."""
    sid = await open_polling(ctx)
    if sid.startswith("UNEXPECTED"):
        return sid
    params = {"EIO": "4", "transport": "polling", "sid": sid}
    packets = "\x1e".join(["6"] * 40)
    answer = await ctx.http.post(f"{ctx.base}/socket.io/", params=params, content=packets)
    return verdict(answer.status_code == 400, f"answered {answer.status_code}")


async def big_frame(ctx: Ctx, _kind: str, _user: str) -> str:
    """A 4 MiB websocket message before any authentication: closed with 1009 (message too
    big) without buffering it (the frame limit follows realtime.max_payload_bytes)."""
    conn = await ctx.open()
    try:
        with contextlib.suppress(Closed, ConnectionClosed):
            await conn.ws.send("4" + "x" * (4 << 20))
        closed = await conn.wait_closed(5, session=False)
        code = conn.ws.close_code if conn.ws.close_code is not None else 0
    finally:
        await conn.close()
    return verdict(closed and code == 1009, f"closed {closed}, code {code}")


async def cross_site_polling(ctx: Ctx, _kind: str, _user: str) -> str:
    """An Origin-less long-polling handshake from a browser context (an <img> of another
    site): refused, so no page can fill this address's unauthenticated-session cap."""
    headers = {
        "Sec-Fetch-Mode": "no-cors",
        "Sec-Fetch-Dest": "image",
        "Sec-Fetch-Site": "cross-site",
    }
    answer = await ctx.http.get(
        f"{ctx.base}/socket.io/", params={"EIO": "4", "transport": "polling"}, headers=headers
    )
    return verdict(answer.status_code == 403, f"answered {answer.status_code}")


async def login_flood(ctx: Ctx, _kind: str, _user: str) -> str:
    """Anonymous logins in a burst: each answered with the redirect to the provider or
    rate_limited (429), never an error, and the signed-in users keep their sessions."""
    answers = await asyncio.gather(
        *(ctx.http.get(f"{ctx.base}/auth/login", follow_redirects=False) for _ in range(20))
    )
    statuses = Counter(answer.status_code for answer in answers)
    expected = set(statuses) <= {302, 303, 429}
    return verdict(
        expected, "answers " + ", ".join(f"{n}x{s}" for s, n in sorted(statuses.items()))
    )


HOSTILE_RUN: dict[str, Callable[[Ctx, str, str], Awaitable[str]]] = {
    **dict.fromkeys(REFUSED_WITH, bad_connect),
    "idle_websocket": idle_websocket,
    "idle_polling": idle_polling,
    "garbage_before_auth": garbage_before_auth,
    "garbage_after_auth": garbage_after_auth,
    "oversized": oversized,
    "reserved_events": reserved_events,
    "malformed_events": malformed_events,
    "cross_user_refresh": cross_user_refresh,
    "event_flood": event_flood,
    "policy_probe": policy_probe,
    "client_close": client_close,
    "huge_headers": huge_headers,
    "long_url": long_url,
    "slow_headers": slow_headers,
    "jsonp_no_slash": jsonp_no_slash,
    "polling_packets": polling_packets,
    "big_frame": big_frame,
    "cross_site_polling": cross_site_polling,
    "login_flood": login_flood,
}


async def hostile(ctx: Ctx, kind: str) -> None:
    user = ctx.rng.choice(list(USERS))
    ctx.tally.count("hostile attempts")
    try:
        outcome = await asyncio.wait_for(HOSTILE_RUN[kind](ctx, kind, user), 120)
    except (OSError, TimeoutError, WebSocketException, Closed, httpx.HTTPError) as exc:
        outcome = verdict(False, f"{type(exc).__name__} {str(exc)[:60]}")
    ctx.tally.hostile_outcome(kind, outcome)


# -- running clients ----------------------------------------------------------------------------


async def one_client(ctx: Ctx) -> None:
    """Draw a role (and a user or hostile kind) and run one client to its end."""
    mix = ctx.args.mix
    role = ctx.rng.choices(ROLES, weights=mix)[0]
    user = ctx.rng.choice(list(USERS))
    left = ctx.deadline - time.monotonic()
    if role in ("expiring", "refreshing"):
        # only when it can finish before the run ends: exp + leeway, then a linger
        need = ctx.pool.window(user, *expiry_window(ctx)).remaining() + ctx.cfg.leeway_s + 15
        if need > left:
            role = "normal"
    if role == "hostile":
        kinds = [k for k in ctx.kinds if k != "expired_token" or ctx.pool.stale(user)]
        await hostile(ctx, ctx.rng.choice(kinds))
        return
    runner = {"normal": normal, "expiring": expiring, "refreshing": refreshing}[role]
    ctx.tally.count(f"{role} clients started")
    bound = max(left, 0) + ctx.args.at_ttl + ctx.cfg.leeway_s + 120
    try:
        await asyncio.wait_for(runner(ctx, user), bound)
    except TimeoutError:
        ctx.tally.fail(role, f"client did not finish within {bound:.0f} s")
    except (OSError, WebSocketException, Closed) as exc:
        ctx.tally.fail(role, f"transport error: {type(exc).__name__}", str(exc)[:120])


async def slot(ctx: Ctx, delay: float) -> None:
    """One concurrent client after another until the run's deadline."""
    if await ctx.pause(delay):
        return
    while not ctx.stop.is_set() and time.monotonic() < ctx.deadline:
        try:
            await one_client(ctx)
        except Exception as exc:  # a bug of this script: reported, the slot goes on
            ctx.tally.odd(f"soak client crashed: {type(exc).__name__}", str(exc)[:200])
            await ctx.pause(1)


async def run_clients(ctx: Ctx, slots: int, seconds: float, ramp: float, extra: list[str]) -> None:
    """``slots`` concurrent clients for ``seconds``, plus one hostile client of each kind in
    ``extra``; then every client is given a bounded time to finish, then cut."""
    ctx.stop = asyncio.Event()
    ctx.deadline = time.monotonic() + seconds
    tasks = [asyncio.create_task(slot(ctx, ramp * i / slots)) for i in range(slots)]
    tasks += [asyncio.create_task(hostile(ctx, kind)) for kind in extra]
    _done, pending = await asyncio.wait(tasks, timeout=seconds + 30)
    ctx.stop.set()
    if pending:
        _done, pending = await asyncio.wait(pending, timeout=30)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if ctx.live:
        await asyncio.gather(*(conn.close() for conn in list(ctx.live)), return_exceptions=True)


# -- watching the node --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the soak started
    live: int  # this script's open connections
    served: int  # valid connections + hostile attempts so far
    stats: dict[str, float]


async def node_stats(ctx: Ctx, collect: bool = False) -> dict[str, float]:
    """The wrapper's figures (after a full garbage collection with ``collect``)."""
    if collect:
        answer = await ctx.http.post(f"{ctx.base}/__soak/gc", timeout=60)
    else:
        answer = await ctx.http.get(f"{ctx.base}/__soak/stats", timeout=30)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    traced = body.pop("tracemalloc", None)
    if isinstance(traced, list):
        ctx.traced = [str(line) for line in traced]
    return {key: float(value) for key, value in body.items() if isinstance(value, int | float)}


def served(tally: Tally) -> int:
    return tally.counts["valid connections"] + tally.counts["hostile attempts"]


async def sample_loop(ctx: Ctx, samples: list[Sample], every: float, t0: float) -> None:
    while True:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            stats = await node_stats(ctx)
            samples.append(Sample(time.monotonic() - t0, len(ctx.live), served(ctx.tally), stats))
        await asyncio.sleep(every)


async def lag_loop(lags: list[float]) -> None:
    """How late this process's event loop wakes up (the load generator's own saturation)."""
    while True:
        started = time.monotonic()
        await asyncio.sleep(0.25)
        lags.append(time.monotonic() - started - 0.25)


async def wait_ready(http: httpx.AsyncClient, base: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(f"{base}/readyz", timeout=5)).status_code == 200:
                return
        await asyncio.sleep(0.5)
    raise SystemExit(f"the node is not ready (keys not loaded) after {within:g} s")


def log_lines(path: Path) -> Counter[str]:
    """The node's log lines by level and message (first words), warnings and above;
    tracebacks (printed by libraries past the JSON formatter) counted by their last line."""
    seen: Counter[str] = Counter()
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                text = line.strip()
                if text and not line[0].isspace() and not text.startswith(("Traceback", "^")):
                    seen[f"(plain) {text[:90]}"] += 1
                continue
            if not isinstance(record, dict):
                continue
            message = str(record.get("message") or record.get("event") or "")
            words = re.sub(r"\s+", " ", message).strip().split(" ")
            seen[f"{record.get('level')} {record.get('logger')}: {' '.join(words[:4])[:90]}"] += 1
    return seen


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the report needs."""

    args: argparse.Namespace
    cfg: NodeConfig
    tally: Tally
    warm: Tally
    pool: TokenPool
    start: dict[str, float]
    end: dict[str, float]
    samples: list[Sample]
    lags: list[float]
    wall_s: float
    server_cpu_s: float
    own_cpu_s: float
    other_cpu_s: float  # every other process of the machine (provider included)
    total_s: float
    log: Counter[str]
    node_alive: bool
    timer: dict[str, Any]
    traced: list[str]


async def soak(args: argparse.Namespace) -> Run:
    from tests.interop.provider import NodeProvider, ensure_node_modules

    began = time.monotonic()
    ensure_node_modules()
    provider = await NodeProvider.start(at_ttl=args.at_ttl)
    try:
        return await with_provider(args, provider, began)
    finally:
        await provider.stop()


async def with_provider(args: argparse.Namespace, provider: NodeProvider, began: float) -> Run:
    cfg = NodeConfig.read()
    rng = random.Random(args.seed)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ssoio-soak-")))
        port = free_port()
        argv = [
            sys.executable,
            str(HERE / "servers" / "soak_node.py"),
            "--port",
            str(port),
            "--issuer",
            provider.issuer,
            "--expiry-warning",
            str(args.expiry_warning),
            "--log-level",
            args.log_level,
            *(["--tracemalloc"] if args.tracemalloc else []),
        ]
        node = Child("ssoio", argv, tmp / "node.log", SERVER_CORE)
        stack.callback(node.stop)
        await asyncio.to_thread(node.wait_listening, port)
        base = f"http://127.0.0.1:{port}"
        # An idle pooled connection is dropped after 2 s, before uvicorn closes it (5 s,
        # timeout_keep_alive): a request sent on a connection the server is closing at that
        # moment fails (RFC 9112 §9.3.1; httpx does not retry), which is the client's race,
        # not the node's (the first 10-minute run with the login burst lost 2 of 4,580)
        limits = httpx.Limits(
            max_connections=500, max_keepalive_connections=50, keepalive_expiry=2.0
        )
        async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as http:
            await wait_ready(http, base)
            pool = TokenPool(provider, cfg.leeway_s, rng)
            await pool.fill(args.logins_per_user)
            refresher = asyncio.create_task(pool.refresh_loop(args.refresh_every))
            try:
                run = await phases(args, cfg, rng, pool, http, base, node)
            finally:
                refresher.cancel()
                await asyncio.gather(refresher, return_exceptions=True)
        run.node_alive = node.proc.poll() is None
        run.log = log_lines(tmp / "node.log")
        if args.node_log is not None:
            shutil.copyfile(tmp / "node.log", args.node_log)
        run.total_s = time.monotonic() - began
        return run


async def phases(
    args: argparse.Namespace,
    cfg: NodeConfig,
    rng: random.Random,
    pool: TokenPool,
    http: httpx.AsyncClient,
    base: str,
    node: Child,
) -> Run:
    url = f"ws://127.0.0.1:{base.rsplit(':', 1)[1]}/socket.io/?EIO=4&transport=websocket"
    ctx = Ctx(args, cfg, url, base, pool, Forger(pool), http, rng)
    ctx.kinds = tuple(k for k in HOSTILE if k not in args.without)
    say(
        f"warm-up: {min(args.clients, args.warmup_clients)} clients for {args.warmup:g} s, "
        "every hostile kind once"
    )
    await run_clients(
        ctx,
        min(args.clients, args.warmup_clients),
        args.warmup,
        min(5.0, args.warmup / 3),
        [k for k in ctx.kinds if k != "expired_token"],
    )
    warm = ctx.tally
    say(f"settling {args.settle:g} s, then the start figures")
    await asyncio.sleep(args.settle)
    start = await node_stats(ctx, collect=True)

    ctx.tally = Tally()
    samples: list[Sample] = []
    lags: list[float] = []
    t0 = time.monotonic()
    watchers = [
        asyncio.create_task(sample_loop(ctx, samples, args.sample, t0)),
        asyncio.create_task(lag_loop(lags)),
        asyncio.create_task(progress(ctx, samples, t0)),
    ]
    cpu0, own0, busy0 = cpu_seconds(node.pid), own_cpu(), machine_busy()
    say(f"soak: {args.clients} clients for {args.minutes:g} min (ramp {args.ramp:g} s)")
    try:
        await run_clients(ctx, args.clients, args.minutes * 60, args.ramp, [])
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    wall, cpu1, own1 = time.monotonic() - t0, cpu_seconds(node.pid), own_cpu()
    other = machine_busy() - busy0 - (cpu1 - cpu0) - (own1 - own0)
    say(f"every client left; settling {args.settle:g} s, then the end figures")
    await asyncio.sleep(args.settle)
    end = await node_stats(ctx, collect=True)
    timer: dict[str, Any] = (await http.get(f"{base}/__soak/timer", timeout=30)).json()
    return Run(
        args,
        cfg,
        ctx.tally,
        warm,
        pool,
        start,
        end,
        samples,
        lags,
        wall,
        cpu1 - cpu0,
        own1 - own0,
        other,
        0.0,
        Counter(),
        True,
        timer,
        ctx.traced,
    )


def machine_busy() -> float:
    """CPU seconds every core of the machine spent busy (``/proc/stat``)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu "):
            ticks = [int(v) for v in line.split()[1:]]
            return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


async def progress(ctx: Ctx, samples: list[Sample], t0: float) -> None:
    while True:
        await asyncio.sleep(30)
        last = samples[-1].stats if samples else {}
        say(
            f"t={time.monotonic() - t0:.0f}s live={len(ctx.live)} "
            f"node connections={last.get('gateway.connections', '?')} "
            f"rss={last.get('rss_kib', 0) / 1024:.0f}MiB served={served(ctx.tally)} "
            f"failures={sum(ctx.tally.failures.values())}"
        )


# -- bounds and the report ----------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    name: str
    start: float
    peak: float
    end: float
    limit: float
    rule: str

    @property
    def held(self) -> bool:
        return self.end <= self.limit


MEMORY_KEYS = ("rss_kib", "hwm_kib", "gc.objects")
SMALL = 10  # maps may end this much (or 1% of their peak) above their start


def peaks(run: Run) -> dict[str, float]:
    top = {key: max(run.start.get(key, 0), run.end.get(key, 0)) for key in run.end}
    for sample in run.samples:
        for key, value in sample.stats.items():
            if isinstance(value, int | float):
                top[key] = max(top.get(key, 0), value)
    return top


def still_valid(run: Run) -> int:
    """Distinct valid tokens presented in the soak that are not past exp + leeway yet."""
    now = time.time()
    return sum(1 for exp in run.tally.presented_exp.values() if exp + run.cfg.leeway_s >= now)


def map_bounds(run: Run) -> list[Bound]:
    top, start, end = peaks(run), run.start, run.end
    bounds = []
    for key in end:
        if key in MEMORY_KEYS or key == "gc_ms":
            continue
        s, p, e = start.get(key, 0), top.get(key, 0), end[key]
        limit, rule = s + max(SMALL, math.ceil(0.01 * p)), f"start + max({SMALL}, 1% of peak)"
        if key == "scheduler.heap":
            live = 4 * end.get("gateway.connections", 0) + 2 * end.get("gateway.unauthenticated", 0)
            limit = s + 1024 + live + max(SMALL, math.ceil(0.01 * p))
            rule = (
                "start + 1024 + 4 x connections + 2 x pending + max(10, 1% of peak): stale "
                "entries leave when due or at the compaction threshold"
            )
        elif key == "token_cache.entries":
            limit = min(run.cfg.cache_size, s + len(run.tally.presented_exp))
            rule = (
                "≤ start + distinct valid tokens presented, and ≤ tokens.cache_size "
                f"({run.cfg.cache_size:,}): forged tokens are never cached"
            )
        elif key == "token_cache.unexpired":
            limit = s + still_valid(run)
            rule = "≤ start + presented tokens still within exp + leeway"
        bounds.append(Bound(key, s, p, e, limit, rule))
    return bounds


def memory_bounds(run: Run) -> tuple[list[Bound], dict[str, float | None]]:
    top, start, end = peaks(run), run.start, run.end
    served_n = max(served(run.tally), 1)
    rss0, rss1, hwm = start["rss_kib"], end["rss_kib"], end.get("hwm_kib", top["rss_kib"])
    slope = steady_slope(run)
    objects0, objects1, objects_peak = start["gc.objects"], end["gc.objects"], top["gc.objects"]
    cached = end.get("token_cache.entries", 0) - start.get("token_cache.entries", 0)
    figures: dict[str, float | None] = {
        "rss_start_mib": rss0 / 1024,
        "rss_peak_mib": max(top["rss_kib"], hwm) / 1024,
        "rss_end_mib": rss1 / 1024,
        "rss_delta_mib": (rss1 - rss0) / 1024,
        "rss_delta_kib_per_1000": (rss1 - rss0) / served_n * 1000,
        "rss_slope_kib_per_1000": None if slope is None else slope * 1000,
        "objects_per_1000": (objects1 - objects0) / served_n * 1000,
    }
    bounds = [
        Bound(
            "GC-tracked objects",
            objects0,
            objects_peak,
            objects1,
            objects0 + max(10_000, 0.02 * (objects_peak - objects0)) + 20 * max(cached, 0),
            "≤ start + max(10,000, 2% of the peak's rise) + 20 per token-cache entry gained",
        ),
    ]
    if slope is not None:
        bounds.append(
            Bound(
                "RSS growth at steady load (KiB per 1,000 connections)",
                0,
                0,
                slope * 1000,
                1024,
                "least-squares slope of RSS over connections served in the second half of the "
                "run (concurrency steady): ≤ 1 KiB per connection served",
            )
        )
    return bounds, figures


def steady_slope(run: Run) -> float | None:
    """KiB of RSS per connection served over the second half of the run (a leak grows it;
    a plateau of freed-but-kept memory does not)."""
    half = run.wall_s / 2
    points = [
        (s.served, s.stats["rss_kib"])
        for s in run.samples
        if half <= s.t <= run.wall_s - max(run.args.lifetime)
    ]
    if len(points) < 5 or points[-1][0] == points[0][0]:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def scrub(text: str) -> str:
    """No path of this machine in the report."""
    text = text.replace(str(ROOT), ".")
    return re.sub(r"/(?:tmp|var|home|root)/[^\s'\")]*", "<path>", text)


def report(run: Run) -> tuple[str, bool]:
    args, cfg, tally = run.args, run.cfg, run.tally
    maps = map_bounds(run)
    memory, figures = memory_bounds(run)
    refused = sum(tally.failures.values())
    hostile_bad = sum(
        n
        for kinds in tally.hostile.values()
        for o, n in kinds.items()
        if o.startswith("UNEXPECTED")
    )
    lapsed = sum(tally.lapses.values())
    timer_ok = bool(run.timer.get("running"))
    overdue = run.end.get("scheduler.overdue", 0)
    checks = [
        (
            "valid clients refused (connect errors, unexpected ack errors or disconnects)",
            str(refused),
            refused == 0,
        ),
        ("hostile attempts with an unexpected outcome", str(hostile_bad), hostile_bad == 0),
        (
            "token expiry enforced (auth:expiring, then auth:revoked at exp + leeway, never "
            "an event served after it)",
            f"{lapsed} lapses",
            lapsed == 0,
        ),
        (
            "internal maps back within their bound",
            f"{sum(b.held for b in maps)} of {len(maps)}",
            all(b.held for b in maps),
        ),
        (
            "memory within its bounds",
            f"{sum(b.held for b in memory)} of {len(memory)}",
            all(b.held for b in memory),
        ),
        ("the node ran to the end", "yes" if run.node_alive else "no", run.node_alive),
        (
            "the node's timer loop runs and is not behind (entries overdue by > 2 s at the end)",
            f"{'running' if timer_ok else 'NOT running'}, {num(overdue)} overdue",
            timer_ok and overdue == 0,
        ),
    ]
    passed = all(ok for _, _, ok in checks)
    if not (timer_ok and overdue == 0):
        stack = "\n".join(f"    {line}" for line in run.timer.get("stack", []))
        timer_note = ["", "The node's timer task at the end:", "", stack]
    else:
        timer_note = []
    steady = [s.live for s in run.samples if args.ramp <= s.t <= run.wall_s - max(args.lifetime)]
    node_peak = max((s.stats.get("gateway.connections", 0) for s in run.samples), default=0)
    lines = [
        "# Soak run: ssoio under churn against a real OpenID Provider",
        "",
        f"- machine: {machine_line()}",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; soak {run.wall_s:.0f} s, whole run "
        f"{run.total_s:.0f} s",
        f"- parameters: `--minutes {args.minutes:g} --clients {args.clients} --at-ttl "
        f"{args.at_ttl} --expiry-warning {args.expiry_warning} --lifetime "
        f"{args.lifetime[0]:g} {args.lifetime[1]:g} --gap {args.gap[0]:g} {args.gap[1]:g} "
        f"--rooms {args.rooms} --mix {' '.join(f'{w:g}' for w in args.mix)} --ramp "
        f"{args.ramp:g} --warmup {args.warmup:g} --settle {args.settle:g} --seed {args.seed}"
        + (f" --without {' '.join(args.without)}" if args.without else "")
        + "`",
        f"- role mix (weights of each draw: normal / expiring / refreshing / hostile): "
        f"{' / '.join(f'{w:g}' for w in args.mix)}; a normal client lives "
        f"{args.lifetime[0]:g}-{args.lifetime[1]:g} s and acts every "
        f"{args.gap[0]:g}-{args.gap[1]:g} s",
        f"- tokens: the node OpenID Provider (npm `oidc-provider`, `tests/interop/idp.mjs`), "
        f"access tokens living {args.at_ttl} s, {args.logins_per_user} logins per user, "
        f"refresh tokens redeemed every {args.refresh_every:g} s per grant",
        f"- node: `config/ssoio.example.toml` (issuer leeway {cfg.leeway_s:g} s, "
        f"unauthenticated_timeout_s {cfg.unauthenticated_timeout_s:g}, max_payload_bytes "
        f"{cfg.max_payload_bytes}, events_per_connection burst {cfg.events_burst}, "
        f"tokens.cache_size {cfg.cache_size:,}) with `realtime.expiry_warning_s = "
        f"{args.expiry_warning}`; raised because every client comes from 127.0.0.1 and "
        "shares five users: `limits.connects_per_ip`, `limits.failed_auth_per_ip` (rate and "
        "burst 100000), `realtime.max_unauthenticated_per_ip` (100000), "
        "`limits.events_per_user` (rate 5000, burst 10000); logging at "
        f"{args.log_level}",
        f"- processes: the node pinned to core {SERVER_CORE}; this script (the clients) and "
        f"the provider to core {LOAD_CORE}",
        "- the node's figures come from its benchmark wrapper (`servers/soak_node.py`): "
        "`GET /__soak/stats` (RSS and the size of every internal map), `POST /__soak/gc` (a "
        "full collection and `malloc_trim`, then the same), `GET /__soak/timer` (the timer "
        "task's awaits); nothing of it is in `ssoio/`",
        "",
        "## Verdict: " + ("PASS" if passed else "**FAIL**"),
        "",
        "| check | result | held |",
        "| --- | ---: | --- |",
        *(f"| {what} | {value} | {'yes' if ok else '**no**'} |" for what, value, ok in checks),
        *timer_note,
        "",
        "## Figures",
        "",
        "| figure | value |",
        "| --- | ---: |",
    ]
    c = tally.counts
    rows: list[tuple[str, str]] = [
        ("connections served (valid, authenticated)", num(c["valid connections"])),
        ("hostile attempts", num(c["hostile attempts"])),
        (
            "clients started: normal / expiring / refreshing",
            " / ".join(
                num(c[f"{r} clients started"]) for r in ("normal", "expiring", "refreshing")
            ),
        ),
        (
            "concurrent clients: peak / mean at steady load",
            f"{num(max((s.live for s in run.samples), default=0))} / "
            f"{num(sum(steady) / len(steady) if steady else None)}",
        ),
        ("node's authenticated connections, peak", num(node_peak)),
        ("events sent / acks received", f"{num(c['events sent'])} / {num(c['acks received'])}"),
        ("events received from the node", num(sum(tally.received.values()))),
        *((f"- {name}", num(n)) for name, n in tally.received.most_common()),
        ("own chat messages delivered back", num(c["own chat messages delivered"])),
        (
            "room messages delivered to connections past exp + leeway",
            num(c["room messages delivered to expired connections"]),
        ),
        (
            "expected policy denials",
            num(sum(n for k, n in c.items() if k.startswith("expected policy denials"))),
        ),
        *(
            (f"- {k.removeprefix('expected policy denials: ')}", num(n))
            for k, n in sorted(c.items())
            if k.startswith("expected policy denials")
        ),
        ("expiries: auth:expiring received", num(c["auth:expiring received"])),
        (
            "expiries: auth:revoked token_expired received",
            num(c["auth:revoked token_expired received"]),
        ),
        (
            "expiries: expired clients disconnected by the node",
            num(c["expired clients disconnected by the server"]),
        ),
        (
            "expiries: lingering expired sessions closed by the node",
            num(c["expired clients lingering: session closed by the server"]),
        ),
        (
            "refreshes: in-band by refreshing clients",
            num(c["in-band refreshes (refreshing clients)"]),
        ),
        (
            "refreshes: refreshed clients connected past their first token's expiry",
            num(c["refreshed clients connected past their first token's expiry"]),
        ),
        (
            "refreshes: in-band by normal clients on auth:expiring",
            num(c["in-band refreshes (normal clients, on auth:expiring)"]),
        ),
        ("normal clients completed", num(c["normal clients completed"])),
        (
            "leaving: websocket closed / Socket.IO disconnect / disconnect then linger",
            " / ".join(
                num(c[k])
                for k in (
                    "left by closing the websocket",
                    "left by a Socket.IO disconnect",
                    "left by a disconnect, lingering: session closed by the server",
                )
            ),
        ),
        (
            "clients cut short by the end of the run",
            num(sum(n for k, n in c.items() if k.endswith("cut short by the end of the run"))),
        ),
        (
            "connect latency p50 / p99 (ms)",
            f"{num(ms(percentile(tally.connect_latency, 50)), 1)} / "
            f"{num(ms(percentile(tally.connect_latency, 99)), 1)}",
        ),
        ("node CPU (share of its core over the soak)", f"{run.server_cpu_s / run.wall_s:.0%}"),
        ("this script's CPU (clients, share of a core)", f"{run.own_cpu_s / run.wall_s:.0%}"),
        (
            "every other process's CPU (the provider, and whatever else ran; share of a core)",
            f"{max(run.other_cpu_s, 0) / run.wall_s:.0%}",
        ),
        (
            "this script's event-loop lag p50 / p99 / max (ms)",
            " / ".join(num(ms(percentile(run.lags, q)), 0) for q in (50, 99, 100)),
        ),
        (
            "provider: logins / refresh grants / errors",
            f"{run.pool.counts['logins']} / {run.pool.counts['refresh grants']} / "
            f"{run.pool.counts['refresh errors']}",
        ),
        ("distinct valid tokens presented to the node", num(len(tally.presented_exp))),
        (
            "websocket closed by the node after it closed an idle session: median / max (s)",
            f"{num(percentile(tally.ws_close_lag, 50), 1)} / "
            f"{num(percentile(tally.ws_close_lag, 100), 1)} (of {len(tally.ws_close_lag)})",
        ),
    ]
    lines += [f"| {label} | {value} |" for label, value in rows]
    lines += [
        "",
        "## Hostile attempts by kind",
        "",
        "| kind | attempts | outcome |",
        "| --- | ---: | --- |",
    ]
    for kind in HOSTILE:
        outcomes = tally.hostile.get(kind, Counter())
        text = "; ".join(f"{o} ({n})" for o, n in outcomes.most_common()) or "none drawn"
        lines.append(f"| {kind} | {sum(outcomes.values())} | {text} |")
    lines += ["", "## Valid clients refused", ""]
    if tally.failures:
        lines += ["| what | count |", "| --- | ---: |"]
        lines += [f"| {what} | {n} |" for what, n in tally.failures.most_common()]
        lines += ["", "First ones:", "", *(f"- {e}" for e in tally.failure_examples)]
    else:
        lines.append("None.")
    lines += ["", "## Token expiry not enforced", ""]
    if tally.lapses:
        lines += ["| what | count |", "| --- | ---: |"]
        lines += [f"| {what} | {n} |" for what, n in tally.lapses.most_common()]
    else:
        lines.append("None.")
    lines += ["", "## Other observations", ""]
    if tally.anomalies:
        lines += ["| what | count |", "| --- | ---: |"]
        lines += [f"| {what} | {n} |" for what, n in tally.anomalies.most_common()]
        lines += ["", "First ones:", "", *(f"- {e}" for e in tally.anomaly_examples)]
    else:
        lines.append("None.")
    warm_bad = sum(run.warm.failures.values())
    lines.append(
        f"\nWarm-up: {run.warm.counts['valid connections']} valid connections, "
        f"{run.warm.counts['hostile attempts']} hostile attempts, {warm_bad} refused."
    )
    if run.pool.errors:
        lines += ["", "Provider errors: " + "; ".join(run.pool.errors)]
    lines += [
        "",
        "## Internal maps of the node: start, peak, end",
        "",
        "Start: after the warm-up, settled and collected; peak: of samples every "
        f"{args.sample:g} s; end: every client gone, {args.settle:g} s settled, full "
        "garbage collection.",
        "",
        "| map | start | peak | end | bound | held | rule |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for b in maps:
        lines.append(
            f"| `{b.name}` | {num(b.start)} | {num(b.peak)} | {num(b.end)} | "
            f"{num(b.limit)} | {'yes' if b.held else '**no**'} | {b.rule} |"
        )
    lines += [
        "",
        "## Memory",
        "",
        "RSS is read from `/proc/self/status` (peak: VmHWM); end is after `gc.collect()` and "
        "`malloc_trim(0)`. CPython keeps much of the memory it freed (pymalloc arenas, the "
        "C heap), so RSS after the load is reported, not bounded; the leak tests are the "
        "GC-tracked objects coming back to their start (the verified-token cache, which keeps "
        "entries until evicted, allowed for) and the RSS slope against connections served "
        "while concurrency is steady.",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| RSS start / peak / end (MiB) | {num(figures['rss_start_mib'], 1)} / "
        f"{num(figures['rss_peak_mib'], 1)} / {num(figures['rss_end_mib'], 1)} |",
        f"| RSS end - start (MiB) | {num(figures['rss_delta_mib'], 1)} |",
        "| RSS end - start per 1,000 connections served (KiB) | "
        f"{num(figures['rss_delta_kib_per_1000'], 1)} |",
        "| RSS slope at steady load per 1,000 connections served (KiB) | "
        f"{num(figures['rss_slope_kib_per_1000'], 1)} |",
        "| GC-tracked objects end - start per 1,000 connections served | "
        f"{num(figures['objects_per_1000'], 1)} |",
        "",
        "| bound | start | peak | end | limit | held | rule |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for b in memory:
        lines.append(
            f"| {b.name} | {num(b.start)} | {num(b.peak)} | {num(b.end)} | "
            f"{num(b.limit)} | {'yes' if b.held else '**no**'} | {b.rule} |"
        )
    lines += [
        "",
        "## Timeline",
        "",
        "| t (s) | clients | connections | unauthenticated | Engine.IO sockets | "
        "scheduler heap / overdue | token cache | asyncio tasks | RSS (MiB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    next_t = 0.0
    for s in run.samples:
        if s.t + 1e-9 < next_t:
            continue
        next_t = s.t + 30
        st = s.stats
        lines.append(
            f"| {s.t:.0f} | {s.live} | {num(st.get('gateway.connections'))} | "
            f"{num(st.get('gateway.unauthenticated'))} | "
            f"{num(st.get('engineio.sockets'))} | {num(st.get('scheduler.heap'))} / "
            f"{num(st.get('scheduler.overdue'))} | "
            f"{num(st.get('token_cache.entries'))} | {num(st.get('asyncio.tasks'))} | "
            f"{st.get('rss_kib', 0) / 1024:.0f} |"
        )
    if run.traced:
        lines += ["", "## Allocation sites grown from start to end (tracemalloc)", ""]
        lines += [f"- `{line}`" for line in run.traced]
    lines += ["", "## The node's log (warning and above)", ""]
    if run.log:
        lines += ["| level and message | lines |", "| --- | ---: |"]
        lines += [f"| {what} | {n} |" for what, n in run.log.most_common(15)]
    else:
        lines.append("Nothing logged.")
    return scrub("\n".join(lines) + "\n"), passed


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the soak")
    parser.add_argument("--clients", type=int, default=2000, help="concurrent client slots")
    parser.add_argument("--at-ttl", type=int, default=90, help="access token lifetime (s)")
    parser.add_argument(
        "--expiry-warning", type=int, default=30, help="realtime.expiry_warning_s of the node"
    )
    parser.add_argument(
        "--lifetime",
        type=float,
        nargs=2,
        default=(5.0, 40.0),
        metavar=("MIN", "MAX"),
        help="a normal client's lifetime (s)",
    )
    parser.add_argument(
        "--gap",
        type=float,
        nargs=2,
        default=(2.0, 8.0),
        metavar=("MIN", "MAX"),
        help="seconds between a normal client's actions",
    )
    parser.add_argument("--rooms", type=int, default=40, help="chat rooms per tenant")
    parser.add_argument(
        "--mix",
        type=float,
        nargs=4,
        default=(0.70, 0.07, 0.07, 0.16),
        metavar=("NORMAL", "EXPIRING", "REFRESHING", "HOSTILE"),
        help="weights of the roles drawn",
    )
    parser.add_argument("--ramp", type=float, default=20.0, help="seconds to start all slots")
    parser.add_argument("--warmup", type=float, default=15.0, help="warm-up seconds")
    parser.add_argument("--warmup-clients", type=int, default=100)
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="seconds before a reading: over ping_interval_s (25), since python-engineio "
        "keeps a closed session's ping task asleep that long",
    )
    parser.add_argument("--sample", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--logins-per-user", type=int, default=2)
    parser.add_argument(
        "--refresh-every",
        type=float,
        default=3.0,
        help="seconds between two refreshes of one grant",
    )
    parser.add_argument("--log-level", default="warning", help="the node's logging level")
    parser.add_argument(
        "--without",
        nargs="+",
        default=[],
        choices=HOSTILE,
        metavar="KIND",
        help="hostile kinds left out of the mix (default: none)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace the node's allocations (slows it) and list the sites that grew",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS, help="report file")
    parser.add_argument("--node-log", type=Path, help="keep a copy of the node's log here")
    args = parser.parse_args()

    raise_file_limit()
    pin(0, LOAD_CORE)
    say(f"machine: {machine_line()}")
    try:
        run = asyncio.run(with_signals(soak(args)))
    except KeyboardInterrupt:
        raise SystemExit("interrupted") from None
    text, passed = report(run)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print()
    print(text, end="")
    raise SystemExit(0 if passed else 1)


async def with_signals(work: Awaitable[T]) -> T:
    """SIGTERM cancels the run like SIGINT does, so every child is stopped on the way out."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await work


if __name__ == "__main__":
    main()
