"""A misbehaving identity provider: down at start and at runtime, slow, huge, compressed or
junk JWKS and discovery documents, unparseable keys beside good ones, key rotation, a flood
of random kids, two issuers sharing a kid, discovery naming another issuer or pointing
jwks_uri elsewhere, and a failing token endpoint behind browser sessions.

The faulty provider is a real HTTP peer (``FaultIdp`` on 127.0.0.1, issuer "faulty", with a
small ``keys.http_timeout_s``); the node's other issuer ("primary", a ``FakeIdp``) carries
the sentinel and the fresh client of ``Node.assert_healthy``: one broken provider must not
break the users of another. Every row names its source.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ssoio.web.sessions import WebSession
from tests.interop.asgi_server import serve_asgi
from tests.security.harness import ISSUER, Node, example_raw, running_node, settings_from
from tests.support.fake_idp import FakeIdp
from tests.support.fault_idp import FaultIdp, running_fault_idp
from tests.support.forge import SigningKey, forge
from tests.support.polling import eventually
from tests.support.raw_client import CONNECT, CONNECT_ERROR

# keys.http_timeout_s of the faulty issuer: under the slow faults' 1 s delay, with room for
# a healthy answer on a loaded 2-core CI machine (0.3 s was once missed there after the
# provider recovered, failing the recovery half of a case)
TIMEOUT_S = 0.6
OCT_SECRET = b"secretsecretsecretsecretsecretse"  # 256 bits: joserfc warns below 112
COOLDOWN_S = 30


@pytest.fixture(scope="module")
def fault_key() -> SigningKey:
    return SigningKey.rsa("fk-1")


@pytest.fixture(scope="module")
def fault_key_2() -> SigningKey:
    return SigningKey.rsa("fk-2")


@pytest.fixture(scope="module")
async def provider(fault_key: SigningKey) -> AsyncIterator[FaultIdp]:
    async with running_fault_idp([fault_key]) as idp:
        yield idp


@pytest.fixture
def faulty(provider: FaultIdp, fault_key: SigningKey) -> FaultIdp:
    provider.reset()
    provider.keys[:] = [fault_key]
    provider.attacker_keys[:] = []
    return provider


NodeFactory = Callable[..., Any]


@pytest.fixture
async def start(faulty: FaultIdp, rsa_key: SigningKey) -> AsyncIterator[NodeFactory]:
    """``await start(**faulty_issuer_overrides)``: a node trusting "primary" and "faulty"."""
    stack: list[Any] = []

    async def make(login_issuer: str = "primary", **overrides: Any) -> Node:
        raw = example_raw()
        second = copy.deepcopy(raw["issuers"][0])
        keys = {"http_timeout_s": TIMEOUT_S, "refetch_cooldown_s": COOLDOWN_S,
                **overrides.pop("keys", {})}  # fmt: skip
        second.update(name="faulty", issuer=faulty.issuer, keys=keys, **overrides)
        raw["issuers"].append(second)
        raw["login"]["issuer"] = login_issuer
        primary = FakeIdp(issuer=ISSUER, keys=[rsa_key])
        http = httpx.AsyncClient(mounts={"https://idp.test": httpx.MockTransport(primary.handle)})
        context = running_node(settings_from(raw), key=rsa_key, idp=primary, http=http)
        node = await context.__aenter__()
        stack.append(context)
        return node

    yield make
    for context in reversed(stack):
        await context.__aexit__(None, None, None)


def faulty_token(node: Node, faulty: FaultIdp, key: SigningKey, user: str = "erin",
                 **claims: Any) -> str:  # fmt: skip
    header = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid}
    return node.remember(forge(header, node.claims(user, iss=faulty.issuer, **claims), key))


async def connect_code(node: Node, token: str) -> str:
    """The wire code of a connect with ``token`` ("ok" when accepted); the session is closed
    again, so unauthenticated sessions never pile up against the per-IP cap."""
    answer = await node.connect({"token": token})
    socket = node.sockets.pop()
    await socket.close()
    if answer.type == CONNECT:
        return "ok"
    assert answer.type == CONNECT_ERROR, answer.raw
    assert answer.data["message"] == "unauthorized", answer.raw
    return str(answer.data["data"]["code"])


async def readiness(node: Node) -> tuple[int, list[str]]:
    async with httpx.AsyncClient() as http:
        response = await http.get(node.url + "/readyz")
    return response.status_code, response.json()["failing_issuers"]


# -- a provider that fails, then recovers -------------------------------------------------

Fault = Callable[[FaultIdp], None]


def behave(endpoint: str, **fields: Any) -> Fault:
    def apply(idp: FaultIdp) -> None:
        behaviour = getattr(idp, endpoint)
        for name, value in fields.items():
            setattr(behaviour, name, value)

    return apply


def discovery_says(**members: Any) -> Fault:
    return lambda idp: idp.discovery_overrides.update(
        {k: (v(idp) if callable(v) else v) for k, v in members.items()}
    )


def jwks_extra(count: int) -> Fault:
    def apply(idp: FaultIdp) -> None:
        idp.extra_jwks.extend({**idp.keys[0].jwk, "kid": f"k{i}"} for i in range(count))

    return apply


# (source, fault, JWKS fetches the fault may cause while failing)
FAULTS: list[tuple[str, Fault]] = [
    ("README idp_unavailable: JWKS answers 503", behave("jwks", mode="down")),
    ("OIDC Discovery §4: discovery answers 503", behave("discovery", mode="down")),
    ("README keys.http_timeout_s: JWKS slower than the timeout",
     behave("jwks", mode="slow", delay_s=1.0)),
    ("README keys.http_timeout_s: discovery slower than the timeout",
     behave("discovery", mode="slow", delay_s=1.0)),
    ("README keys.max_jwks_bytes: a 300 KiB JWKS, streamed without a length",
     behave("jwks", mode="huge", size=300_000)),
    ("README keys.max_jwks_bytes: a 300 KiB JWKS with its Content-Length",
     behave("jwks", mode="huge", size=300_000, declare_length=True)),
    ("RFC 9110 §8.4.1.3: a gzip bomb (20 MB of zeros, 20 KB on the wire)",
     behave("jwks", mode="gzip_bomb", size=20_000_000)),
    ("README keys.max_keys: 33 keys", jwks_extra(32)),
    ("RFC 8259: a JWKS that is HTML", behave("jwks", mode="junk", body=b"<html>oops</html>",
                                              content_type="text/html")),
    ("RFC 7517 §5: a JWKS that is a JSON array", behave("jwks", mode="junk", body=b"[]")),
    ("RFC 7517 §5: keys not a list", behave("jwks", mode="junk", body=b'{"keys": "x"}')),
    ("RFC 7517 §5: no usable key", behave("jwks", mode="junk",
                                          body=b'{"keys": [{"kty": "XYZ"}, 5, null]}')),
    ("RFC 8259 §6: a JWKS with NaN", behave("jwks", mode="junk", body=b'{"keys": NaN}')),
    ("RFC 7517 §5: an empty body", behave("jwks", mode="junk", body=b"")),
    ("RFC 7517 §5: a JWKS answered 404", behave("jwks", mode="junk", status=404,
                                                 body=b'{"keys": []}')),
    ("RFC 8414 §3: discovery that is not JSON", behave("discovery", mode="junk", body=b"x")),
    ("RFC 9110 §15.4.3: a JWKS redirect to another key set (not followed)",
     lambda idp: behave("jwks", mode="redirect", location=idp.attacker_uri)(idp)),
    ("RFC 9110 §15.4.3: a discovery redirect (not followed)",
     lambda idp: behave("discovery", mode="redirect", location=idp.attacker_uri)(idp)),
    ("OIDC Discovery §4.3: discovery naming another issuer",
     discovery_says(issuer="https://evil.example")),
    ("OIDC Discovery §4.3: discovery naming the issuer with a trailing slash",
     discovery_says(issuer=lambda idp: idp.issuer + "/")),
    ("OIDC Discovery §3: jwks_uri a file: URL", discovery_says(jwks_uri="file:///etc/passwd")),
    ("OIDC Discovery §3: jwks_uri a javascript: URL", discovery_says(jwks_uri="javascript:1")),
    ("OIDC Discovery §3: jwks_uri not a string", discovery_says(jwks_uri=5)),
    ("OIDC Discovery §3: jwks_uri missing", discovery_says(jwks_uri=None)),
]  # fmt: skip


@pytest.mark.parametrize(("source", "fault"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_fault_at_start_then_recovery(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey, source: str, fault: Fault
) -> None:
    fault(faulty)
    faulty.attacker_keys[:] = [SigningKey(fault_key.kid, SigningKey.rsa("x").private)]
    node = await start()
    token = faulty_token(node, faulty, fault_key)
    assert await connect_code(node, token) == "idp_unavailable", source
    assert await readiness(node) == (503, ["faulty"])
    assert faulty.count("attacker") == 0, "a redirect or a foreign jwks_uri was followed"
    assert faulty.count("jwks") <= 1, "fetched again within the back-off"
    if "another issuer" in source or "trailing slash" in source or "jwks_uri" in source:
        assert faulty.count("jwks") == 0, "keys fetched from an unverified discovery document"
    await node.assert_healthy()
    # the provider recovers: keys are fetched again within the cool-down, connects work
    faulty.reset()
    node.clock.advance(COOLDOWN_S + 1)
    assert await connect_code(node, faulty_token(node, faulty, fault_key)) == "ok"
    assert await readiness(node) == (200, [])
    await node.assert_healthy(fetches=2)  # the primary's TTL refreshes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert isinstance(port, int)
    return port


async def test_down_at_start_becomes_ready_without_any_client(
    rsa_key: SigningKey, fault_key: SigningKey
) -> None:
    """README /readyz: a provider not even listening when the node starts (connection
    refused) is retried in the background with a back-off; once it listens, the keys load
    and /readyz turns 200 with no client ever connecting (a load balancer never sends one)."""
    port = free_port()
    raw = example_raw()
    late = copy.deepcopy(raw["issuers"][0])
    late.update(name="late", issuer=f"http://127.0.0.1:{port}", keys={"http_timeout_s": 1})
    raw["issuers"].append(late)
    primary = FakeIdp(issuer=ISSUER, keys=[rsa_key])
    http = httpx.AsyncClient(mounts={"https://idp.test": httpx.MockTransport(primary.handle)})
    async with running_node(settings_from(raw), key=rsa_key, idp=primary, http=http) as node:
        store, issuer = node.server.providers.keys, node.server.settings.issuers[1]
        assert await readiness(node) == (503, ["late"])
        for attempt in (2, 3):  # still down: each back-off ends in one more attempt
            await asleep(node)
            node.clock.advance(COOLDOWN_S)
            await until(lambda: store.status(issuer).fetches == attempt)  # noqa: B023
        await asleep(node)
        assert await readiness(node) == (503, ["late"])
        provider = FaultIdp(keys=[fault_key], issuer=f"http://127.0.0.1:{port}")
        async with serve_asgi(provider.app(), port=port):
            node.clock.advance(COOLDOWN_S)  # the back-off (at most the cool-down) ends
            await until(lambda: store.status(issuer).loaded)
            assert await readiness(node) == (200, [])
            assert provider.count("jwks") == 1
            connects = [e for e in node.logs.audit() if str(e["event"]).startswith("auth.con")]
            assert [e.get("issuer") for e in connects] == ["primary"], "a client connected"
            # (that one is the sentinel of the other issuer, bob)
            token = faulty_token(node, provider, fault_key)
            assert await connect_code(node, token) == "ok"
        await node.assert_healthy()


async def test_slow_below_the_timeout_works_and_is_shared(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey, fault_key_2: SigningKey
) -> None:
    """README: an unknown kid causes one refetch shared by all concurrent callers."""
    node = await start(keys={"http_timeout_s": 2.0})
    faulty.keys.append(fault_key_2)
    faulty.jwks.mode, faulty.jwks.delay_s = "slow", 0.3
    node.clock.advance(COOLDOWN_S + 1)
    before = faulty.count("jwks")
    tokens = [faulty_token(node, faulty, fault_key_2) for _ in range(10)]
    codes = await asyncio.gather(*(connect_code(node, t) for t in tokens))
    assert codes == ["ok"] * 10
    assert faulty.count("jwks") - before == 1
    await node.assert_healthy(fetches=2)


async def test_down_at_runtime_serves_stale_keys_then_stops(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey
) -> None:
    """README: when the provider is down, keys keep serving up to the stale limit."""
    node = await start()
    faulty.jwks.mode = "down"
    await asleep(node)
    node.clock.advance(301)  # past the JWKS TTL: a background refresh, which fails
    assert await connect_code(node, faulty_token(node, faulty, fault_key)) == "ok"
    assert await eventually(lambda: faulty.count("jwks") >= 2)
    node.clock.advance(21_600)  # past the stale limit (6 h)
    assert await connect_code(node, faulty_token(node, faulty, fault_key)) == "idp_unavailable"
    await node.assert_healthy(fetches=4)


# (source, junk entry, token kid to try, code for that kid)
JUNK_KEYS: list[tuple[str, dict[str, Any] | Any, str, str]] = [
    ("RFC 7517 §5: an RSA key with an invalid modulus",
     {"kty": "RSA", "kid": "bad", "n": "!!", "e": "AQAB"}, "bad", "key_unknown"),
    ("RFC 7517 §5: an unknown kty", {"kty": "XYZ", "kid": "xyz"}, "xyz", "key_unknown"),
    ("RFC 7518 §6.2.1.1: an unknown curve",
     {"kty": "EC", "crv": "P-999", "kid": "ec", "x": "AA", "y": "AA"}, "ec", "key_unknown"),
    ("RFC 7517 §4.2: an encryption key under the good kid",
     "ENC", "fk-1", "ok"),
    ("RFC 7517 §4.3: key_ops without verify", "OPS", "ops", "key_unknown"),
    ("RFC 7517 §4.5: a kid that is not a string", "KID5", "5", "key_unknown"),
    ("README: a kid of 300 characters", "LONGKID", "l" * 300, "key_unknown"),
    ("RFC 7517 §5: an entry that is a string", "not a key", "fk-1", "ok"),
    ("RFC 7517 §5: an entry that is null", None, "fk-1", "ok"),
    ("RFC 8725 §3.1: a symmetric key beside the RSA key (HS256 with its secret)",
     {"kty": "oct", "kid": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2U"}, "oct",
     "algorithm_not_allowed"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "entry", "kid", "code"), JUNK_KEYS,
                         ids=[j[0] for j in JUNK_KEYS])  # fmt: skip
async def test_unparseable_key_beside_good_ones(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey, source: str, entry: Any,
    kid: str, code: str,
) -> None:  # fmt: skip
    good = fault_key.jwk
    entry = {"ENC": {**good, "use": "enc"}, "OPS": {**good, "kid": "ops", "key_ops": ["encrypt"]},
             "KID5": {**good, "kid": 5}, "LONGKID": {**good, "kid": "l" * 300}
             }.get(entry, entry) if isinstance(entry, str) else entry  # fmt: skip
    faulty.extra_jwks.append(entry)
    node = await start()
    assert await connect_code(node, faulty_token(node, faulty, fault_key)) == "ok", source
    if code == "algorithm_not_allowed":
        token = node.remember(
            forge({"alg": "HS256", "kid": kid}, node.claims("erin", iss=faulty.issuer), OCT_SECRET)
        )
    else:
        token = faulty_token(node, faulty, SigningKey(kid, fault_key.private))
    assert await connect_code(node, token) == code, source
    assert faulty.count("jwks") == 1
    await node.assert_healthy()


async def test_key_rotation(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey, fault_key_2: SigningKey
) -> None:
    """rp-key-rotation-op-sign-key: a new kid is fetched (once per cool-down); keys withdrawn
    from the JWKS stop verifying at the next fetch."""
    node = await start()
    faulty.keys[:] = [fault_key_2]
    new, old = fault_key_2, fault_key
    assert await connect_code(node, faulty_token(node, faulty, new)) == "key_unknown"  # cool-down
    assert faulty.count("jwks") == 1
    node.clock.advance(COOLDOWN_S + 1)
    assert await connect_code(node, faulty_token(node, faulty, new)) == "ok"
    assert await connect_code(node, faulty_token(node, faulty, old)) == "key_unknown"
    assert faulty.count("jwks") == 2
    await node.assert_healthy(fetches=2)


WITHDRAWALS = [
    ("rp-key-rotation-op-sign-key: seen by a connect with the new kid", "connect", "new kid",
     "key_unknown"),
    ("README keys.jwks_ttl_s: seen by the background refresh, no client needed", "background",
     "new kid", "key_unknown"),
    # (a kid already cached is not refetched for: the TTL refresh sees the new key)
    ("RFC 7517 §4.5: the kid re-used for another key", "background", "same kid",
     "signature_invalid"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "seen_by", "rotation", "code"), WITHDRAWALS,
                         ids=[w[0] for w in WITHDRAWALS])  # fmt: skip
async def test_withdrawn_key_no_longer_admits_cached_tokens(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey, fault_key_2: SigningKey,
    source: str, seen_by: str, rotation: str, code: str,
) -> None:  # fmt: skip
    """README tokens.cache_size: a token verified before its key was withdrawn from the JWKS
    is not accepted from the verified-token cache once a fetch shows the withdrawal."""
    node = await start()
    now = int(node.clock())
    token = faulty_token(node, faulty, fault_key, exp=now + 3600)
    assert await connect_code(node, token) == "ok"
    hits = node.server.providers.verifier.cache_hits
    assert await connect_code(node, token) == "ok"
    assert node.server.providers.verifier.cache_hits == hits + 1, "not served from the cache"
    rekeyed = SigningKey(fault_key.kid, fault_key_2.private)
    replacement = fault_key_2 if rotation == "new kid" else rekeyed
    faulty.keys[:] = [replacement]
    if seen_by == "connect":
        node.clock.advance(COOLDOWN_S + 1)
        fresh = faulty_token(node, faulty, replacement)
        assert await connect_code(node, fresh) == "ok", "a token of the new key"
    else:
        await asleep(node)
        node.clock.advance(300 + 1)  # keys.jwks_ttl_s: the background refresh wakes
        await until(lambda: faulty.count("jwks") == 2 and not _inflight(node))
    assert faulty.count("jwks") == 2
    assert await connect_code(node, token) == code, source
    await node.assert_healthy(fetches=2)


def _inflight(node: Node) -> bool:
    return any(s.inflight for s in node.server.providers.keys._states.values())


async def asleep(node: Node) -> None:
    """Until every issuer's key refresh loop waits on the node's clock (the only sleeps
    on it), so that moving the clock on wakes them: moved before a loop went back to sleep,
    the move would be lost on it (seen on a loaded machine)."""
    issuers = len(node.server.settings.issuers)
    await until(lambda: node.clock.sleeping == issuers and not _inflight(node))


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded, in real time) until ``condition()`` holds."""
    assert await eventually(condition), "the condition never held"


async def test_trickling_jwks_is_cut_at_the_deadline(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey, fault_key_2: SigningKey
) -> None:
    """README keys.http_timeout_s: a JWKS sent one byte per second (each read within any
    per-read timeout) is abandoned at the deadline; a connect with a new kid waiting on it
    is refused then, and connects with known keys never wait on it."""
    deadline_s = 1.5
    node = await start(keys={"http_timeout_s": deadline_s})
    faulty.keys.append(fault_key_2)
    faulty.jwks.mode, faulty.jwks.delay_s = "trickle", 1.0
    node.clock.advance(COOLDOWN_S + 1)
    loop = asyncio.get_running_loop()

    async def timed_connect(key: SigningKey) -> tuple[str, float]:
        socket = await node.open()
        began = loop.time()
        answer = await socket.connect({"token": faulty_token(node, faulty, key)}, timeout_s=20)
        took = loop.time() - began
        assert answer is not None, f"no answer to CONNECT within {took:.1f} s"
        await socket.close()
        return ("ok" if answer.type == CONNECT else answer.data["data"]["code"]), took

    waiting = asyncio.create_task(timed_connect(fault_key_2))
    await until(lambda: faulty.count("jwks") == 2)  # the refetch is trickling in
    known = [await timed_connect(fault_key) for _ in range(3)]
    assert not waiting.done(), "the trickle ended before the known-key connects"
    code, took = await waiting
    assert code in ("key_unknown", "idp_unavailable")
    assert took < deadline_s + 5, f"refused after {took:.1f} s"  # unbounded: ~900 s
    assert [c for c, _ in known] == ["ok"] * 3
    assert max(t for _, t in known) < deadline_s, known  # they did not wait on the fetch
    await node.assert_healthy(fetches=2)


async def test_flood_of_random_kids(start: NodeFactory, faulty: FaultIdp,
                                    fault_key: SigningKey) -> None:  # fmt: skip
    """README: a flood of random kids costs the provider one request per cool-down."""
    node = await start()

    gate = asyncio.Semaphore(15)  # under realtime.max_unauthenticated_per_ip (20)

    async def one(token: str) -> str:
        async with gate:
            return await connect_code(node, token)

    async def flood() -> list[str]:
        tokens = [faulty_token(node, faulty, SigningKey(secrets.token_hex(8), fault_key.private))
                  for _ in range(40)]  # fmt: skip
        return list(await asyncio.gather(*(one(t) for t in tokens)))

    assert set(await flood()) == {"key_unknown"}
    assert faulty.count("jwks") == 1  # within the cool-down of the start-up fetch
    node.clock.advance(COOLDOWN_S + 1)
    assert set(await flood()) == {"key_unknown"}
    assert set(await flood()) == {"key_unknown"}
    assert faulty.count("jwks") == 2
    node.clock.advance(COOLDOWN_S + 1)
    assert set(await flood()) == {"key_unknown"}
    assert faulty.count("jwks") == 3
    assert await connect_code(node, faulty_token(node, faulty, fault_key)) == "ok"
    await node.assert_healthy(fetches=2)


async def test_two_issuers_sharing_a_kid(
    start: NodeFactory, faulty: FaultIdp, rsa_key: SigningKey
) -> None:
    """README keys: cached per (issuer, JWKS URL, kid): one issuer's key never verifies
    another issuer's token, even with the same kid (RFC 7517 §4.5: kids are per set)."""
    twin = SigningKey(rsa_key.kid, SigningKey.rsa("twin").private)  # the faulty issuer's
    faulty.keys[:] = [twin]
    node = await start()
    primary_signed = faulty_token(node, faulty, rsa_key)  # iss faulty, the primary's key
    assert await connect_code(node, primary_signed) == "signature_invalid"
    twin_signed = node.token("erin", key=twin)  # iss primary, the faulty issuer's key
    assert await connect_code(node, twin_signed) == "signature_invalid"
    assert await connect_code(node, faulty_token(node, faulty, twin)) == "ok"
    assert faulty.count("jwks") == 1
    await node.assert_healthy()


async def test_jwks_uri_on_the_same_host_elsewhere_is_the_providers_choice(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey
) -> None:
    """OIDC Discovery §3: jwks_uri may point anywhere the (issuer-checked) document says;
    keys come from there only, and the old location is never consulted."""
    other = SigningKey("other-1", SigningKey.rsa("other").private)
    faulty.attacker_keys[:] = [other]
    faulty.discovery_overrides["jwks_uri"] = faulty.attacker_uri
    node = await start()
    assert await connect_code(node, faulty_token(node, faulty, other)) == "ok"
    assert await connect_code(node, faulty_token(node, faulty, fault_key)) == "key_unknown"
    assert faulty.count("jwks") == 0
    await node.assert_healthy()


# -- browser sessions: the token endpoint and end-session endpoint ------------------------


async def signed_in(
    node: Node, faulty: FaultIdp, key: SigningKey, due_in: float = 10
) -> tuple[str, str]:
    """A browser session of erin at the faulty issuer whose access token expires in
    ``due_in`` s (due for refresh by default); (session id, cookie header)."""
    login = node.server.login
    assert login is not None
    now = node.clock() + due_in - 10
    session = WebSession(
        secrets.token_urlsafe(16), now, now + 3600, issuer="faulty", subject="erin",
        idp_session="idp-session-erin", access_token=faulty_token(node, faulty, key, exp=now + 10),
        refresh_token=node.remember("rt-" + secrets.token_urlsafe(16)), access_expires_at=now + 10,
    )  # fmt: skip
    await login.store.save(session)
    return session.id, f"ssoio_session={login.cookies.sign(session.id)}"


async def get_token(node: Node, cookie: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(node.url + "/auth/token", headers={"Cookie": cookie})


TokenFault = Callable[[FaultIdp, Node, SigningKey], None]

# (source, fault) -> the session ends, /auth/token answers 401 token_missing
TOKEN_FAULTS: list[tuple[str, TokenFault]] = [
    ("RFC 6749 §5.2: the refresh token is refused (invalid_grant)", lambda f, n, k: None),
]


def token_endpoint(**fields: Any) -> TokenFault:
    def apply(idp: FaultIdp, node: Node, key: SigningKey) -> None:
        behave("token", **fields)(idp)

    return apply


TOKEN_OUTAGES: list[tuple[str, TokenFault]] = [
    ("RFC 6749 §5.1: the token endpoint answers 503", token_endpoint(mode="down")),
    ("RFC 6749 §5.1: the token endpoint is slower than the timeout",
     token_endpoint(mode="slow", delay_s=1.0)),
    ("RFC 6749 §5.1: the token endpoint answers HTML",
     token_endpoint(mode="junk", body=b"<html>", content_type="text/html")),
]  # fmt: skip


async def assert_session_ended(node: Node, session_id: str, cookie: str) -> None:
    response = await get_token(node, cookie)
    assert response.status_code == 401, (response.status_code, response.text[:300])
    assert response.json()["error"]["code"] == "token_missing"
    login = node.server.login
    assert login is not None
    assert await login.store.load(session_id) is None


@pytest.mark.parametrize(("source", "fault"), TOKEN_FAULTS, ids=[t[0] for t in TOKEN_FAULTS])
async def test_refresh_fault_ends_the_session(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey, source: str, fault: TokenFault
) -> None:
    node = await start(login_issuer="faulty")
    session_id, cookie = await signed_in(node, faulty, fault_key)
    fault(faulty, node, fault_key)
    await assert_session_ended(node, session_id, cookie)
    assert faulty.count("token") == 1
    await node.assert_healthy(also_secret=[cookie.split("=", 1)[1]])


@pytest.mark.parametrize(
    "due_in", [5, -1], ids=["the access token is still good", "the access token has expired"]
)
@pytest.mark.parametrize(("source", "fault"), TOKEN_OUTAGES,
                         ids=[t[0] for t in TOKEN_OUTAGES])  # fmt: skip
async def test_token_endpoint_outage_keeps_the_session(
    start: NodeFactory,
    faulty: FaultIdp,
    fault_key: SigningKey,
    source: str,
    fault: TokenFault,
    due_in: float,
) -> None:
    """README /auth/token: a provider outage during the refresh is no reason to sign the
    user out: the session is kept, the current access token handed out while it is good,
    then 503 idp_unavailable (never a 500)."""
    node = await start(login_issuer="faulty")
    session_id, cookie = await signed_in(node, faulty, fault_key, due_in=due_in)
    fault(faulty, node, fault_key)
    response = await get_token(node, cookie)
    login = node.server.login
    assert login is not None
    kept = await login.store.load(session_id)
    assert kept is not None, source
    if due_in > 0:
        assert response.status_code == 200, (source, response.text[:200])
        assert response.json()["access_token"] == kept.access_token
        node.secrets.discard(kept.access_token or "")  # handed to its own session on purpose
        node.secrets.discard((kept.access_token or "").rsplit(".", 1)[-1])
    else:
        assert response.status_code == 503, (source, response.text[:200])
        assert response.json()["error"]["code"] == "idp_unavailable"
        node.recorder.statuses.remove(("/auth/token", 503))  # this answer, by design
    assert node.logs.audit("auth.refresh.failed")
    await node.assert_healthy(also_secret=[cookie.split("=", 1)[1]])


@pytest.mark.parametrize("who", ["another user", "another trusted issuer"])
async def test_refresh_answered_for_another_identity_ends_the_session(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey, who: str
) -> None:
    """OIDC Core §12.2: a refresh answer is for the same iss and sub as the sign-in; a
    session must never switch identity."""
    node = await start(login_issuer="faulty")
    session_id, cookie = await signed_in(node, faulty, fault_key)
    other = (faulty_token(node, faulty, fault_key, user="alice") if who == "another user"
             else node.token("erin"))  # fmt: skip
    faulty.token_response.update(access_token=other, token_type="Bearer", expires_in=300)
    try:
        await assert_session_ended(node, session_id, cookie)
    finally:
        await node.assert_healthy(also_secret=[cookie.split("=", 1)[1]])


async def test_refresh_control(start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey) -> None:
    """Control for the cases above: a good refresh answer keeps the session going."""
    node = await start(login_issuer="faulty")
    _, cookie = await signed_in(node, faulty, fault_key)
    fresh = faulty_token(node, faulty, fault_key)
    faulty.token_response.update(
        access_token=fresh,
        token_type="Bearer",
        expires_in=300,
        refresh_token=node.remember("rt-" + secrets.token_hex(16)),
    )
    response = await get_token(node, cookie)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"] == fresh
    assert faulty.forms[-1]["grant_type"] == "refresh_token"
    node.secrets.discard(fresh)  # handed to its own session on purpose
    node.secrets.discard(fresh.rsplit(".", 1)[1])
    await node.assert_healthy(also_secret=[cookie.split("=", 1)[1]])


END_SESSION: list[tuple[str, str]] = [
    ("javascript:alert(document.cookie)", "http://127.0.0.1:8000/"),
    ("data:text/html,<script>x</script>", "http://127.0.0.1:8000/"),
    ("//evil.example/logout", "http://127.0.0.1:8000/"),
    ("ftp://evil.example/logout", "http://127.0.0.1:8000/"),
    ("https://idp.example/logout", "https://idp.example/logout?"),  # control
]


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    END_SESSION,
    ids=[f"RP-Initiated Logout §2: {e[0][:24]}" for e in END_SESSION],
)
async def test_end_session_endpoint_that_is_no_url(
    start: NodeFactory, faulty: FaultIdp, fault_key: SigningKey, endpoint: str, expected: str
) -> None:
    """A discovery document's end_session_endpoint is only used when it is an http(s) URL;
    logout never calls the provider server-to-server."""
    faulty.discovery_overrides["end_session_endpoint"] = endpoint
    node = await start(login_issuer="faulty")
    _, cookie = await signed_in(node, faulty, fault_key, due_in=3000)
    login = node.server.login
    assert login is not None
    await login.client.endpoints()  # the login client, from the discovery document
    async with httpx.AsyncClient() as http:
        response = await http.post(node.url + "/auth/logout", headers={
            "Cookie": cookie, "Origin": "http://127.0.0.1:8000",
            "Accept": "application/json"})  # fmt: skip
    assert response.status_code == 200, response.text
    redirect = response.json()["redirect"]
    assert redirect.startswith(expected), redirect
    assert faulty.count("logout") == 0
    await node.assert_healthy(also_secret=[cookie.split("=", 1)[1]])
