"""Property-based hostile input (hypothesis, bounded budgets): tokens against the verifier,
``auth`` payloads and client events against the gateway, and raw Engine.IO / Socket.IO
frames against one live node.

The property everywhere: no input crashes the server or leaks an exception to a client;
every answer carries a wire code of DESIGN.md (plus the token codes README documents for
``auth:refresh``). Hypothesis drives synchronous tests, so the asynchronous code under test
runs on an event loop of its own, in a thread (``LoopThread``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import string
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssoio.errors import AuthenticationError, SsoioError
from ssoio.oidc.providers import IdentityProviders
from ssoio.policy.engine import Policy
from ssoio.realtime.gateway import Gateway
from tests.security.harness import ISSUER, Node, reference_claims, running_node, settings_from
from tests.support.clock import FakeClock
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey, forge
from tests.support.raw_client import (
    ACK,
    CONNECT_ERROR,
    RawSocket,
    SocketClosedError,
    parse_packet,
)
from tests.support.transport_path import MALFORMED_PACKETS, ssoio_only

T = TypeVar("T")

TOKEN_CODES = frozenset({
    "token_missing", "token_malformed", "token_expired", "token_not_yet_valid",
    "signature_invalid", "algorithm_not_allowed", "issuer_unknown", "audience_mismatch",
    "key_unknown", "token_revoked", "claims_invalid", "idp_unavailable",
})  # fmt: skip
CONNECT_CODES = TOKEN_CODES | {"origin_denied", "rate_limited", "namespace_forbidden"}
EVENT_CODES = frozenset({"forbidden", "invalid_payload", "payload_too_large", "rate_limited",
                         "unknown_event", "reauth_required"}) | TOKEN_CODES  # fmt: skip
NOW = 1_800_000_000

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIVE_FUZZ = settings(FUZZ, max_examples=150)


class LoopThread:
    """An event loop in a thread of its own, for running coroutines from sync tests."""

    def __repr__(self) -> str:
        return "LoopThread()"

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        async def cancel_the_rest() -> None:  # python-engineio's ping timers sleep for 25 s
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.close()


# -- strategies --------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)  # fmt: skip
HEADER_NAMES = ["alg", "typ", "kid", "crit", "jku", "jwk", "x5u", "x5c", "cty", "zip", "b64"]
CLAIM_NAMES = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "nonce", "azp", "client_id",
               "scope", "realm_access", "groups", "tenant", "typ", "at_hash"]  # fmt: skip
ALGS = ["RS256", "RS512", "PS256", "ES256", "HS256", "none", "None", "EdDSA", "", "rs256"]
ROOMS = ["staff", "tenant:acme", "tenant:acme:general", "tenant:globex:general", "user:alice",
         "r:staff", "*", "tenant:*:x", "", "null", "Staff", "\uff53\uff54\uff41\uff46\uff46",
         "a" * 300]  # fmt: skip
EVENTS = ["room:join", "room:leave", "presence:list", "auth:refresh", "chat:send",
          "broadcast_announcement", "admin:kick", "connect", "disconnect", "orders:update",
          "chat:message", "auth:revoked"]  # fmt: skip


@st.composite
def headers(draw: st.DrawFn) -> dict[str, Any]:
    header = {
        "alg": draw(st.sampled_from(ALGS) | json_values),
        "typ": draw(st.sampled_from(["at+jwt", "JWT", "id_token+jwt"]) | json_values),
        "kid": draw(st.sampled_from(["rsa-1", "rsa-2", None, "../x"]) | json_values),
    }
    extra = draw(st.dictionaries(st.sampled_from(HEADER_NAMES) | st.text(max_size=6),
                                 json_values, max_size=3))  # fmt: skip
    return {**header, **extra}


@st.composite
def claim_sets(draw: st.DrawFn) -> dict[str, Any]:
    good = {**reference_claims("erin"), "iss": ISSUER, "aud": "ssoio-api", "iat": NOW,
            "exp": NOW + 300}  # fmt: skip
    broken = draw(st.dictionaries(st.sampled_from(CLAIM_NAMES), json_values, max_size=4))
    dropped = draw(st.sets(st.sampled_from(CLAIM_NAMES), max_size=2))
    return {k: v for k, v in {**good, **broken}.items() if k not in dropped}


@st.composite
def tokens(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["signed", "attacker", "unsigned", "mutated", "junk", "dots"]))
    if kind == "junk":
        return draw(st.text(max_size=200))
    if kind == "dots":
        alphabet = string.ascii_letters + string.digits + "-_.=+/"
        return draw(st.text(alphabet=alphabet, max_size=300))
    header, claims = draw(headers()), draw(claim_sets())
    key = {"signed": IDP_KEY, "attacker": ATTACKER, "unsigned": None,
           "mutated": IDP_KEY}[kind]  # fmt: skip
    token = forge(header, claims, key, alg="RS256")
    if kind == "mutated":
        at = draw(st.integers(0, len(token) - 1))
        token = token[:at] + draw(st.text(max_size=3)) + token[at + draw(st.integers(0, 3)) :]
    return token


IDP_KEY = SigningKey.rsa("rsa-1")
ATTACKER = SigningKey(IDP_KEY.kid, SigningKey.rsa("attacker").private)


# -- the verifier ---------------------------------------------------------------------------


class Verifier:
    def __init__(self, providers: IdentityProviders, idp: FakeIdp, requests: int) -> None:
        self.providers, self.idp, self.requests = providers, idp, requests

    def __repr__(self) -> str:  # hypothesis prints its arguments: keep this short
        return "Verifier()"


@pytest.fixture(scope="module")
def verifier(loop_thread: LoopThread) -> Iterator[Verifier]:
    async def make() -> Verifier:
        idp = FakeIdp(issuer=ISSUER, keys=[IDP_KEY])
        providers = IdentityProviders(settings_from(), clock=FakeClock(), http=idp.client())
        await providers.warm()
        return Verifier(providers, idp, idp.total_requests)

    made = loop_thread.run(make())
    yield made
    loop_thread.run(made.providers.http.aclose())


@FUZZ
@given(token=tokens())
def test_fuzzed_tokens(loop_thread: LoopThread, verifier: Verifier, token: str) -> None:
    """README security notes: every token is verified or refused with a token code; the
    provider is never asked (the clock stands within the refetch cool-down)."""

    async def check() -> None:
        refusal: AuthenticationError | None = None
        try:
            verified = await verifier.providers.verifier.verify(token)
        except AuthenticationError as refused:
            refusal = refused
        if refusal is None:
            assert verified.claims["iss"] == ISSUER
            return
        assert refusal.code in TOKEN_CODES, refusal.code
        assert token not in refusal.message or len(token) < 12

    loop_thread.run(check())
    assert verifier.idp.total_requests == verifier.requests


# -- the gateway ----------------------------------------------------------------------------


@dataclass
class NullTransport:
    """The gateway's transport, recording nothing but what an assertion needs."""

    disconnected: list[str] = field(default_factory=list)

    async def emit(
        self, event: str, data: Any, *, to: str | list[str], namespace: str,
        ignore_queue: bool = False,
    ) -> None:  # fmt: skip
        json.dumps(data)  # whatever the gateway emits must be JSON

    async def enter(self, sid: str, room: str, namespace: str) -> None:
        return None

    async def leave(self, sid: str, room: str, namespace: str) -> None:
        return None

    async def disconnect(self, sid: str, namespace: str) -> None:
        self.disconnected.append(sid)

    async def close_session(self, eio_sid: str) -> None:
        return None


class World:
    def __init__(
        self, gateway: Gateway, transport: NullTransport, idp: FakeIdp, clock: FakeClock
    ) -> None:
        self.gateway, self.transport, self.idp, self.clock = gateway, transport, idp, clock
        self.count = 0

    def __repr__(self) -> str:  # hypothesis prints its arguments: keep this short
        return "World()"

    def token(self, user: str, **claims: Any) -> str:
        body = {**reference_claims(user), "iss": ISSUER, "aud": "ssoio-api",
                "iat": int(self.clock()), "exp": int(self.clock()) + 300, **claims}  # fmt: skip
        return forge({"alg": "RS256", "typ": "at+jwt", "kid": IDP_KEY.kid}, body, IDP_KEY)

    async def connected(self, user: str) -> str:
        """A fresh connection of ``user`` (kicks and revocations may end the last one)."""
        self.count += 1
        sid = f"{user}-{self.count}"
        auth = {"token": self.token(user)}
        await self.gateway.connect(sid, f"e-{sid}", "/", {"REMOTE_ADDR": "10.0.0.1"}, auth)
        return sid


@pytest.fixture(scope="module")
def world(loop_thread: LoopThread) -> Iterator[World]:
    async def make() -> World:
        clock, idp = FakeClock(NOW), FakeIdp(issuer=ISSUER, keys=[IDP_KEY])
        settings = settings_from()
        providers = IdentityProviders(settings, clock=clock, http=idp.client())
        transport = NullTransport()
        gateway = Gateway(settings, providers, Policy(settings), transport, clock=clock)
        return World(gateway, transport, idp, clock)

    made = loop_thread.run(make())
    yield made
    loop_thread.run(made.gateway.stop())
    loop_thread.run(made.gateway.providers.http.aclose())


environs = st.fixed_dictionaries(
    {"REMOTE_ADDR": st.sampled_from(["10.0.0.2", "10.0.0.3", "", "::1"])},
    optional={
        "HTTP_ORIGIN": st.sampled_from(["http://127.0.0.1:8000", "https://evil.example", "null",
                                        ""]) | st.text(max_size=20),
        "HTTP_AUTHORIZATION": st.sampled_from(["Bearer", "Basic x", "Bearer a.b.c", ""])
        | st.text(max_size=30),
        "HTTP_COOKIE": st.sampled_from(["ssoio_session=x", "ssoio_session=", "a=b; c"])
        | st.text(max_size=30),
        "QUERY_STRING": st.sampled_from(["token=a.b.c", "EIO=4&transport=websocket",
                                         "access_token="]) | st.text(max_size=30),
    },
)  # fmt: skip
auth_payloads = st.one_of(
    json_values,
    st.fixed_dictionaries({"token": st.one_of(tokens(), json_values)}),
    st.builds(lambda extra: {"token": "VALID", **extra},
              st.dictionaries(st.text(max_size=6), json_values, max_size=2)),
)  # fmt: skip


@FUZZ
@given(auth=auth_payloads, environ=environs)
def test_fuzzed_connects(
    loop_thread: LoopThread, world: World, auth: Any, environ: dict[str, Any]
) -> None:
    """DESIGN.md: a connect is accepted or refused with a connect code, never a crash."""

    async def check() -> None:
        if isinstance(auth, dict) and auth.get("token") == "VALID":
            auth["token"] = world.token("erin")
        world.count += 1
        sid = f"fuzz-{world.count}"
        refusal: SsoioError | None = None
        try:
            connection = await world.gateway.connect(sid, f"e-{sid}", "/", environ, auth)
        except SsoioError as refused:
            refusal = refused
        if refusal is not None:
            assert refusal.code in CONNECT_CODES, refusal.code
            return
        assert connection.principal.subject == "erin"
        world.gateway.disconnected(sid, None, "fuzz")

    loop_thread.run(check())


event_payloads = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(["room", "text", "sub", "token", "from"]),
                    st.sampled_from(ROOMS) | json_values, max_size=3),
)  # fmt: skip


@FUZZ
@given(user=st.sampled_from(["alice", "erin", "dave", "carol"]),
       name=st.sampled_from(EVENTS) | st.text(max_size=30),
       args=st.lists(event_payloads, max_size=2))  # fmt: skip
def test_fuzzed_events(
    loop_thread: LoopThread, world: World, user: str, name: str, args: list[Any]
) -> None:
    """DESIGN.md: every event is answered {ok: true, ...} or {ok: false, error: {code,
    message}} with an event code; never an exception."""

    async def check() -> None:
        sid = await world.connected(user)
        answer = await world.gateway.handle_event(sid, name, args)
        assert isinstance(answer, dict), answer
        json.dumps(answer)
        if answer["ok"] is not True:
            assert answer["ok"] is False
            assert set(answer["error"]) == {"code", "message"}
            assert answer["error"]["code"] in EVENT_CODES, answer
        world.gateway.disconnected(sid, None, "fuzz")

    loop_thread.run(check())
    assert world.idp.total_requests <= 2  # the start-up discovery and JWKS fetches only


# -- raw frames against a live node ----------------------------------------------------------


class Live:
    def __init__(self, node: Node, stack: contextlib.AsyncExitStack) -> None:
        self.node, self.stack = node, stack
        self.client: RawSocket | None = None
        self.sid = ""

    def __repr__(self) -> str:  # hypothesis prints its arguments: keep this short
        return "Live()"


@pytest.fixture(scope="module")
def live_node(loop_thread: LoopThread) -> Iterator[Live]:
    async def start() -> Live:
        stack = contextlib.AsyncExitStack()
        node = await stack.enter_async_context(running_node(key=IDP_KEY))
        await node.begin_case()
        return Live(node, stack)

    live = loop_thread.run(start())
    yield live
    loop_thread.run(live.stack.aclose())


namespaces = st.sampled_from(["", "/,", "/admin,", "/x y,", "//,"])
frames = st.one_of(
    # Socket.IO packets in an Engine.IO message
    st.builds(
        lambda kind, attachments, ns, ack, body: f"4{kind}{attachments}{ns}{ack}{body}",
        st.sampled_from(["1", "2", "3", "5", "6"]),
        st.sampled_from(["", "1-", "0-", "999999999-"]),
        namespaces,
        st.sampled_from(["", "7", "0", "99999999999999999999"]),
        st.one_of(json_values.map(json.dumps), st.text(max_size=40),
                  st.builds(lambda n, p: json.dumps([n, *p]), st.sampled_from(EVENTS)
                            | st.text(max_size=10), st.lists(event_payloads, max_size=2))),
    ),
    st.builds(lambda ns, body: f"40{ns}{body}", st.sampled_from(["", "/,", "/admin,", "/x,"]),
              json_values.map(json.dumps)),
    st.sampled_from(["1", "2", "3", "5", "6", "0", "4"]),
    st.text(max_size=20),  # mostly no Engine.IO packet at all
    st.binary(max_size=64),
)  # fmt: skip


def check_packet(raw: str) -> None:
    """Every Socket.IO answer carries a wire code."""
    packet = parse_packet(raw)
    if packet is None:
        return
    if packet.type == ACK:
        body = packet.data[0]
        assert isinstance(body, dict), raw
        if body.get("ok") is not True:
            assert body["error"]["code"] in EVENT_CODES, raw
    elif packet.type == CONNECT_ERROR:
        assert packet.data["message"] in ("unauthorized", "forbidden"), raw
        assert packet.data["data"]["code"] in CONNECT_CODES, raw


@ssoio_only(MALFORMED_PACKETS)
@LIVE_FUZZ
@given(frame=frames)
def test_fuzzed_frames(loop_thread: LoopThread, live_node: Live, frame: str | bytes) -> None:
    """README input bounds: any frame is answered with a wire code, ignored, or closes its
    own session; the sentinel keeps receiving and nothing is left behind."""

    async def check() -> None:
        node = live_node.node
        if (
            live_node.client is None
            or not live_node.client.is_open
            or (node.server.gateway.connections.get(live_node.sid) is None)
        ):
            if live_node.client is not None:
                await live_node.client.close()
            live_node.client, live_node.sid = await node.client("erin")
        client = live_node.client
        seen = len(client.frames)
        with contextlib.suppress(SocketClosedError):
            await client.send(frame)
        await asyncio.sleep(0.005)
        if node.server.gateway.connections.get(live_node.sid) is not None:
            with contextlib.suppress(SocketClosedError):
                await client.call("room:join", {"room": "tenant:acme:general"}, timeout_s=0.5)
        for received in client.frames[seen:]:
            if isinstance(received, str):
                check_packet(received)
        assert node.live_state()["binary_buffers"] == 0
        assert node.sentinel is not None
        await node.barrier(node.sentinel, "bob")
        node.assert_clean()

    loop_thread.run(check())


@ssoio_only(MALFORMED_PACKETS)
def test_after_the_fuzz_the_node_is_healthy(loop_thread: LoopThread, live_node: Live) -> None:
    loop_thread.run(live_node.node.assert_healthy())
