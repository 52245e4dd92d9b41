"""Attacks on live connections: expiry with traffic in flight, in-band refresh to another
identity, issuer or fewer rights, refresh with bad tokens, back-channel logout forgeries
(every OpenID Back-Channel Logout RP conformance case), and clock jumps.

The node's clock is a ``FakeClock`` that the cases move by hand, then run the gateway's timer
tick themselves. Every row names its source; every case ends with ``Node.assert_healthy``.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.security.harness import (
    CLIENT_ID,
    ISSUER,
    Node,
    example_raw,
    running_node,
    settings_from,
)
from tests.support.fake_idp import FakeIdp
from tests.support.forge import SigningKey, forge
from tests.support.raw_client import ACK, RawSocket

PARTNER = "https://partner.test/realms/acme"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Moving the clock past the JWKS and discovery TTLs makes the node refresh them once each.
REFRESHES = 2


@pytest.fixture(scope="module")
def partner_key() -> SigningKey:
    return SigningKey.rsa("partner-1")


@pytest.fixture(scope="module")
async def node(rsa_key: SigningKey, partner_key: SigningKey) -> AsyncIterator[Node]:
    """The example configuration plus a second issuer ("partner") with its own keys."""
    raw = example_raw()
    partner = copy.deepcopy(raw["issuers"][0])
    partner.update(name="partner", issuer=PARTNER)
    raw["issuers"].append(partner)
    primary = FakeIdp(issuer=ISSUER, keys=[rsa_key])
    other = FakeIdp(issuer=PARTNER, keys=[partner_key])

    def route(request: httpx.Request) -> httpx.Response:
        return (other if str(request.url).startswith(PARTNER) else primary).handle(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(route))
    async with running_node(settings_from(raw), key=rsa_key, idp=primary, http=http) as running:
        yield running


def code_of(answer: Any) -> str:
    assert isinstance(answer, dict), answer
    return "ok" if answer.get("ok") is True else str(answer["error"]["code"])


async def still_there(live: Node, socket: RawSocket, sid: str, sub: str) -> None:
    """The connection is alive, the same user, and still receives its tenant's broadcasts."""
    connection = live.server.gateway.connections.get(sid)
    assert connection is not None, "the connection was dropped"
    assert connection.principal.subject == sub
    await live.server.emit("memo", {"check": sid}, room="tenant:acme")
    got = await socket.wait_event("memo", where=lambda d: d.get("check") == sid)
    assert got is not None, "the connection stopped receiving"
    assert socket.events("auth:revoked") == []


# -- in-band refresh ----------------------------------------------------------------------

Make = Callable[[Node, SigningKey, SigningKey], Any]  # -> the auth:refresh payload


def erin(**claims: Any) -> Make:
    return lambda n, key, partner: {"token": n.token("erin", **claims)}


REFRESH_REFUSALS: list[tuple[str, Make, str]] = [
    ("DESIGN.md auth:refresh: another user's token", lambda n, k, p: {"token": n.token("alice")},
     "forbidden"),
    ("DESIGN.md auth:refresh: the same sub at another trusted issuer",
     lambda n, k, p: {"token": n.token("erin", key=p, iss=PARTNER)}, "forbidden"),
    ("DESIGN.md auth:refresh: sub with a leading space", erin(sub=" erin"), "forbidden"),
    ("DESIGN.md auth:refresh: sub in another case", erin(sub="ERIN"), "forbidden"),
    ("RFC 9068 §4: an untrusted issuer", erin(iss="https://evil.example"), "issuer_unknown"),
    ("RFC 7519 §4.1.4: an expired token", erin(exp=1_000_000_000), "token_expired"),
    ("RFC 7519 §4.1.5: a token not yet valid", erin(nbf=4_000_000_000), "token_not_yet_valid"),
    ("RFC 7515 §5.2: a forged signature",
     lambda n, k, p: {"token": n.token("erin", key=SigningKey(k.kid, p.private))},
     "signature_invalid"),
    ("RFC 8725 §3.1: alg none",
     lambda n, k, p: {"token": forge({"alg": "none"}, n.claims("erin"), None)},
     "algorithm_not_allowed"),
    ("RFC 9068 §4: another audience", erin(aud="other-api"), "audience_mismatch"),
    ("OIDC Core §2: an ID token", erin(nonce="n-1"), "claims_invalid"),
    ("README: a token of a kid the IdP never published",
     lambda n, k, p: {"token": n.token("erin", key=SigningKey("rsa-9", p.private))},
     "key_unknown"),
    ("DESIGN.md auth:refresh {token}: token a number", lambda n, k, p: {"token": 5},
     "invalid_payload"),
    ("DESIGN.md auth:refresh {token}: the payload a string",
     lambda n, k, p: n.token("erin"), "invalid_payload"),
    ("DESIGN.md auth:refresh {token}: an empty object", lambda n, k, p: {}, "invalid_payload"),
    ("DESIGN.md auth:refresh {token}: the token empty", lambda n, k, p: {"token": ""},
     "token_missing"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "make", "code"), REFRESH_REFUSALS,
                         ids=[r[0] for r in REFRESH_REFUSALS])  # fmt: skip
async def test_refused_refresh_changes_nothing(
    live: Node, rsa_key: SigningKey, partner_key: SigningKey, source: str, make: Make, code: str
) -> None:
    socket, sid = await live.client("erin")
    assert code_of(await socket.call("room:join", {"room": "tenant:acme:general"})) == "ok"
    before = live.server.gateway.connections.get(sid)
    assert before is not None
    rooms, expires_at, generation = set(before.rooms), before.expires_at, before.generation
    payload = make(live, rsa_key, partner_key)
    if isinstance(payload, dict) and isinstance(payload.get("token"), str):
        live.remember(payload["token"])
    answer = await socket.call("auth:refresh", payload)
    assert code_of(answer) == code, (source, answer)
    await still_there(live, socket, sid, "erin")
    after = live.server.gateway.connections.get(sid)
    assert after is not None
    assert (after.rooms, after.expires_at, after.generation) == (rooms, expires_at, generation)
    await live.assert_healthy()


async def test_refresh_to_fewer_rights_leaves_rooms(live: Node) -> None:
    """DESIGN.md: after a refresh with fewer rights, rooms no longer allowed are left with
    room:revoked {room, code: permission_revoked}, and nothing more arrives from them."""
    socket, _ = await live.client("dave")  # staff, tenant acme, no chat scope
    assert code_of(await socket.call("room:join", {"room": "staff"})) == "ok"
    answer = await socket.call("auth:refresh", {"token": live.token("dave", realm_access={
        "roles": []})})  # fmt: skip
    assert code_of(answer) == "ok", answer
    revoked = await socket.wait_event("room:revoked")
    assert revoked == {"room": "staff", "code": "permission_revoked"}
    await live.server.emit("memo", {"to": "staff"}, room="staff")
    await live.barrier(socket, "dave")
    assert socket.events("memo") == []
    assert code_of(await socket.call("room:join", {"room": "staff"})) == "forbidden"
    await live.assert_healthy()


async def test_refresh_to_another_tenant_leaves_the_old_tenant(live: Node) -> None:
    """README: a refresh re-evaluates rooms; the auto-joined tenant room goes too."""
    socket, sid = await live.client("erin")
    assert code_of(await socket.call("room:join", {"room": "tenant:acme:general"})) == "ok"
    answer = await socket.call("auth:refresh", {"token": live.token("erin", tenant="globex")})
    assert code_of(answer) == "ok", answer
    connection = live.server.gateway.connections.get(sid)
    assert connection is not None
    assert connection.rooms == {"user:erin", "tenant:globex"}
    revoked = {d["room"] for d in socket.events("room:revoked")}
    assert revoked == {"tenant:acme", "tenant:acme:general"}
    await live.server.emit("memo", {"to": "acme"}, room="tenant:acme")
    await live.barrier(socket, "erin")
    assert socket.events("memo") == []
    await live.assert_healthy()


async def test_refresh_without_the_scope_forbids_the_event(live: Node) -> None:
    socket, _ = await live.client("erin")
    assert code_of(await socket.call("auth:refresh", {"token": live.token(
        "erin", scope="openid")})) == "ok"  # fmt: skip
    answer = await socket.call("chat:send", {"room": "tenant:acme:general", "text": "hi"})
    assert code_of(answer) == "forbidden"
    await live.assert_healthy()


# -- expiry --------------------------------------------------------------------------------


async def tick_at(live: Node, when: float) -> None:
    live.clock.now = when
    await live.server.gateway.tick()


async def test_expiry_with_events_in_flight(live: Node) -> None:
    """DESIGN.md: connections never outlive tokens; an event racing the expiry timer is
    either delivered (and acked ok) before it, or refused (reauth_required), never both."""
    assert live.sentinel is not None
    await live.sentinel.call("room:join", {"room": "tenant:acme:general"})
    socket, sid = await live.client("erin")
    connection = live.server.gateway.connections.get(sid)
    assert connection is not None
    deadline = connection.expires_at + connection.leeway_s
    ids: list[int] = []
    sent = {10: asyncio.Event(), 20: asyncio.Event()}

    async def send_all() -> None:
        for i in range(40):
            ids.append(await socket.emit("chat:send", {"room": "tenant:acme:general",
                                                       "text": f"m{i}"}))  # fmt: skip
            if len(ids) in sent:
                sent[len(ids)].set()
            await asyncio.sleep(0.002)

    async def expire_meanwhile() -> None:
        await sent[10].wait()
        live.clock.now = deadline + 0.5  # expired; the timer has not run yet
        await sent[20].wait()
        await live.server.gateway.tick()  # the timer: auth:revoked, then the disconnect

    await asyncio.gather(send_all(), expire_meanwhile())
    assert await socket.wait_event("auth:revoked") == {"code": "token_expired"}
    await socket.wait_closed(0.2)  # everything the server sent before closing has arrived
    acks = {p.id: p.data[0] for p in socket.received if p.type == ACK}
    codes = [code_of(acks[i]) if i in acks else "none" for i in ids]
    assert {"ok", "reauth_required"} <= set(codes), f"no race happened: {codes}"
    assert set(codes) <= {"ok", "reauth_required", "none"}, codes
    await live.barrier(live.sentinel, "bob")
    delivered = [d["text"] for d in live.sentinel.events("chat:message")]
    acked = [f"m{i}" for i, code in enumerate(codes) if code == "ok"]
    assert sorted(delivered) == sorted(acked), (delivered, codes)
    assert live.server.gateway.connections.get(sid) is None
    await live.sentinel.call("room:leave", {"room": "tenant:acme:general"})
    await live.assert_healthy(fetches=REFRESHES)


async def test_expired_connection_only_accepts_refresh(live: Node) -> None:
    """README: past exp + leeway only auth:refresh is accepted (reauth_required), and a
    refresh in that window keeps the connection; the old timer no longer applies."""
    socket, sid = await live.client("erin")
    connection = live.server.gateway.connections.get(sid)
    assert connection is not None
    old_deadline = connection.expires_at + connection.leeway_s
    live.clock.now = old_deadline + 0.5
    answer = await socket.call("room:join", {"room": "tenant:acme:general"})
    assert code_of(answer) == "reauth_required"
    refreshed = await socket.call("auth:refresh", {"token": live.token("erin")})
    assert code_of(refreshed) == "ok", refreshed
    await tick_at(live, old_deadline + 1)
    await still_there(live, socket, sid, "erin")
    assert code_of(await socket.call("room:join", {"room": "tenant:acme:general"})) == "ok"
    await live.assert_healthy(fetches=REFRESHES)


async def test_refresh_with_an_expired_token_in_the_reauth_window(live: Node) -> None:
    socket, sid = await live.client("erin")
    connection = live.server.gateway.connections.get(sid)
    assert connection is not None
    deadline = connection.expires_at + connection.leeway_s
    live.clock.now = deadline + 0.5
    stale = live.token("erin", exp=int(deadline) - 100, iat=int(deadline) - 400)
    assert code_of(await socket.call("auth:refresh", {"token": stale})) == "token_expired"
    await live.server.gateway.tick()
    assert await socket.wait_event("auth:revoked") == {"code": "token_expired"}
    assert live.server.gateway.connections.get(sid) is None
    await live.assert_healthy(fetches=REFRESHES)


async def test_refresh_to_a_shorter_token_expires_at_the_new_exp(live: Node) -> None:
    socket, sid = await live.client("erin")
    now = live.clock()
    short = live.token("erin", exp=int(now) + 90)
    assert code_of(await socket.call("auth:refresh", {"token": short})) == "ok"
    await tick_at(live, now + 90 + 31)
    assert await socket.wait_event("auth:revoked") == {"code": "token_expired"}
    assert live.server.gateway.connections.get(sid) is None
    await live.assert_healthy()


async def test_warning_then_revocation(live: Node) -> None:
    """DESIGN.md: auth:expiring {expires_in} before exp, then auth:revoked, once each."""
    socket, _ = await live.client("erin")
    now = live.clock()
    await tick_at(live, now + 240)
    assert await socket.wait_event("auth:expiring") == {"expires_in": 60}
    await tick_at(live, now + 300 + 29)
    await live.barrier(socket, "erin")
    assert socket.events("auth:revoked") == []
    await tick_at(live, now + 300 + 31)
    assert await socket.wait_event("auth:revoked") == {"code": "token_expired"}
    assert len(socket.events("auth:expiring")) == 1
    await live.assert_healthy(fetches=REFRESHES)


async def test_cached_token_expires_on_time(live: Node) -> None:
    """README caching: a verified-token cache hit is re-checked against exp."""
    token = live.token("erin")
    answer = await live.connect({"token": token})
    assert answer.type == 0
    await live.close_clients()
    live.clock.advance(300 + 31)
    refusal = await live.refusal({"token": token})
    assert refusal["data"]["code"] == "token_expired"
    await live.assert_healthy(fetches=REFRESHES)


# -- clock jumps ----------------------------------------------------------------------------


async def test_clock_jump_forward(live: Node) -> None:
    """A forward jump (NTP step, suspend/resume) revokes every expired connection at once,
    and only those: the sentinel's token is valid for 24 hours (tokens.max_lifetime_s)."""
    sockets = [await live.client(user) for user in ("erin", "alice", "dave")]
    await tick_at(live, live.clock() + 3_600)
    for socket, sid in sockets:
        assert await socket.wait_event("auth:revoked") == {"code": "token_expired"}
        assert live.server.gateway.connections.get(sid) is None
    await live.assert_healthy(fetches=REFRESHES)


async def test_clock_jump_backward(live: Node) -> None:
    """A backward jump neither revokes nor warns early; expiry still happens at exp."""
    socket, sid = await live.client("erin")
    connection = live.server.gateway.connections.get(sid)
    assert connection is not None
    exp = connection.expires_at
    start = live.clock()
    await tick_at(live, start - 3600)
    await still_there(live, socket, sid, "erin")
    fresh, fresh_sid = await live.client("alice")  # tokens of the jumped-back time work
    assert code_of(await fresh.call("room:join", {"room": "staff"})) == "ok"
    issued_before_the_jump = live.token("erin", iat=int(start), exp=int(start) + 300)
    refused = await live.refusal({"token": issued_before_the_jump})
    assert refused["data"]["code"] == "token_not_yet_valid"
    await tick_at(live, exp + 29)
    await live.barrier(socket, "erin")
    assert socket.events("auth:revoked") == []
    await tick_at(live, exp + 31)
    assert await socket.wait_event("auth:revoked") == {"code": "token_expired"}
    await live.assert_healthy(fetches=REFRESHES)
    del fresh_sid


# -- back-channel logout ----------------------------------------------------------------------


def logout_token(live: Node, key: SigningKey | bytes | None = None,
                 header: dict[str, Any] | None = None, **claims: Any) -> str:  # fmt: skip
    now = int(live.clock())
    body = {"iss": ISSUER, "aud": CLIENT_ID, "iat": now, "exp": now + 120,
            "jti": secrets.token_hex(8), "sid": "idp-session-erin", "events": {EVENT: {}},
            **claims}  # fmt: skip
    body = {k: v for k, v in body.items() if v is not ...}
    signer = live.key if key is None else key
    head = {"alg": "RS256", "typ": "logout+jwt", "kid": live.key.kid, **(header or {})}
    head = {k: v for k, v in head.items() if v is not ...}
    return live.remember(forge(head, body, signer))


async def post_logout(live: Node, form: dict[str, str] | None = None,
                      content: bytes | None = None, content_type: str | None = None
                      ) -> httpx.Response:  # fmt: skip
    headers = {"Content-Type": content_type} if content_type else {}
    async with httpx.AsyncClient() as http:
        return await http.post(live.url + "/auth/backchannel-logout", data=form,
                               content=content, headers=headers)  # fmt: skip


Forgery = Callable[[Node, SigningKey], str]

# The OpenID Foundation RP conformance modules for back-channel logout
# (plan oidcc-client-back-channel-logout-rp-basic), then the rest of BCL 1.0 §2.4/§2.6.
ALG = "algorithm_not_allowed"
CLAIMS = "claims_invalid"


def duplicate_sid(n: Node, k: SigningKey) -> str:
    body = (
        f'{{"iss":"{ISSUER}","aud":"{CLIENT_ID}","iat":{int(n.clock())},'
        f'"jti":"{secrets.token_hex(4)}","sid":"x","sid":"idp-session-erin",'
        f'"events":{{"{EVENT}":{{}}}}}}'
    )
    header = b'{"alg":"RS256","typ":"logout+jwt","kid":"rsa-1"}'
    return n.remember(forge(header, body.encode(), n.key))


FORGERIES: list[tuple[str, Forgery, str]] = [
    ("oidcc-client-test-rp-backchannel-rpinitlogout-alg-none",
     lambda n, k: logout_token(n, header={"alg": "none"}).rsplit(".", 1)[0] + ".", ALG),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-wrong-alg (RS512)",
     lambda n, k: logout_token(n, header={"alg": "RS512"}), ALG),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-wrong-alg (HS256 keyed with the public JWK)",
     lambda n, k: logout_token(n, key=str(n.key.jwk).encode(), header={"alg": "HS256"}), ALG),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-no-event",
     lambda n, k: logout_token(n, events=...), CLAIMS),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-wrong-event",
     lambda n, k: logout_token(n, events={"http://schemas.openid.net/event/other": {}}), CLAIMS),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-with-nonce",
     lambda n, k: logout_token(n, nonce="n-0S6_WzA2Mj"), CLAIMS),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-wrong-aud",
     lambda n, k: logout_token(n, aud="other-client"), "audience_mismatch"),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-wrong-iss",
     lambda n, k: logout_token(n, iss="https://evil.example"), CLAIMS),
    ("BCL 1.0 §2.6 step 3: the partner issuer (trusted for access tokens, not for login)",
     lambda n, k: logout_token(n, key=k, iss=PARTNER, header={"kid": k.kid}), "key_unknown"),
    ("BCL 1.0 §2.6 step 2: signed by another key under the IdP's kid",
     lambda n, k: logout_token(n, key=SigningKey(n.key.kid, k.private)), "signature_invalid"),
    ("BCL 1.0 §2.4: events value not an object",
     lambda n, k: logout_token(n, events={EVENT: 1}), CLAIMS),
    ("BCL 1.0 §2.4: events a list", lambda n, k: logout_token(n, events=[EVENT]), CLAIMS),
    ("BCL 1.0 §2.4: neither sid nor sub",
     lambda n, k: logout_token(n, sid=..., sub=...), CLAIMS),
    ("BCL 1.0 §2.4: sid a number", lambda n, k: logout_token(n, sid=7), CLAIMS),
    ("BCL 1.0 §2.4: jti missing", lambda n, k: logout_token(n, jti=...), CLAIMS),
    ("BCL 1.0 §2.4: iat missing", lambda n, k: logout_token(n, iat=...), CLAIMS),
    ("BCL 1.0 §2.6 step 3: expired",
     lambda n, k: logout_token(n, exp=int(n.clock()) - 600), "token_expired"),
    ("BCL 1.0 §2.6 step 3: iat older than logout_token_max_age_s",
     lambda n, k: logout_token(n, iat=int(n.clock()) - 3600, exp=...), "token_expired"),
    ("BCL 1.0 §2.6 step 3: iat in the future",
     lambda n, k: logout_token(n, iat=int(n.clock()) + 3600), "token_not_yet_valid"),
    ("RFC 8725 §3.11: an access token (typ at+jwt) as a logout token",
     lambda n, k: logout_token(n, header={"typ": "at+jwt"}), CLAIMS),
    ("RFC 8725 §3.11: the victim's own access token as a logout token",
     lambda n, k: n.token("erin"), CLAIMS),
    ("BCL 1.0 §2.4: an ID token (nonce, at_hash) as a logout token",
     lambda n, k: logout_token(n, header={"typ": "JWT"}, nonce="n", at_hash="x", events=...),
     CLAIMS),
    ("RFC 7519 §7.2: a JWE", lambda n, k: "a.b.c.d.e", "token_malformed"),
    ("RFC 7515 §5.2 / RFC 8725 §2.1: duplicate sid (another, then the victim's)",
     duplicate_sid, "token_malformed"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "forgery", "code"), FORGERIES,
                         ids=[f[0] for f in FORGERIES])  # fmt: skip
async def test_forged_logout_token(
    live: Node, partner_key: SigningKey, source: str, forgery: Forgery, code: str
) -> None:
    victim, sid = await live.client("erin")
    response = await post_logout(live, {"logout_token": forgery(live, partner_key)})
    assert response.status_code == 400, (source, response.text)
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"] == code, source
    assert response.headers["cache-control"] == "no-store"
    await still_there(live, victim, sid, "erin")
    assert not live.logs.audit("auth.backchannel.logout")
    await live.assert_healthy()


MALFORMED_REQUESTS: list[tuple[str, dict[str, str] | None, bytes | None, str | None]] = [
    ("BCL 1.0 §2.5: no logout_token", {}, None, None),
    ("BCL 1.0 §2.5: an empty logout_token", {"logout_token": ""}, None, None),
    ("BCL 1.0 §2.5: the token as JSON, not a form", None,
     b'{"logout_token": "a.b.c"}', "application/json"),
    ("BCL 1.0 §2.5: a form of 1 MB", {"logout_token": "a" * 1_000_000}, None, None),
    ("RFC 7578: a multipart body with junk", None, b"--x\r\n\r\n--x--",
     "multipart/form-data; boundary=x"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "form", "content", "content_type"), MALFORMED_REQUESTS,
                         ids=[m[0] for m in MALFORMED_REQUESTS])  # fmt: skip
async def test_malformed_logout_request(
    live: Node, source: str, form: dict[str, str] | None, content: bytes | None,
    content_type: str | None,
) -> None:  # fmt: skip
    victim, sid = await live.client("erin")
    response = await post_logout(live, form, content, content_type)
    assert response.status_code == 400, (source, response.text[:200])
    await still_there(live, victim, sid, "erin")
    await live.assert_healthy()


async def test_logout_token_replay(live: Node) -> None:
    """BCL 1.0 §2.6 step 7 / README: a logout token's jti is used once."""
    victim, sid = await live.client("erin")
    token = logout_token(live)
    assert (await post_logout(live, {"logout_token": token})).status_code == 200
    assert await victim.wait_event("auth:revoked") == {"code": "logged_out"}
    again, again_sid = await live.client("erin")  # the same IdP session signs in again
    replay = await post_logout(live, {"logout_token": token})
    assert replay.status_code == 400
    await still_there(live, again, again_sid, "erin")
    assert live.server.gateway.connections.get(sid) is None
    await live.assert_healthy()


async def test_logout_of_one_session_spares_the_others(live: Node) -> None:
    """BCL 1.0 §2.7: a sid-only logout ends that session's sockets and no one else's."""
    victim, victim_sid = await live.client("erin")
    other, other_sid = await live.client("erin", sid="idp-session-erin-2")
    response = await post_logout(live, {"logout_token": logout_token(live)})
    assert response.status_code == 200
    assert await victim.wait_event("auth:revoked") == {"code": "logged_out"}
    await still_there(live, other, other_sid, "erin")
    assert live.server.gateway.connections.get(victim_sid) is None
    await live.assert_healthy()
