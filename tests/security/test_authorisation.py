"""Hostile authorisation requests from authenticated clients: room names with case, Unicode
and path tricks, other clients' sid rooms, forged ``connect``/``disconnect`` events (which
python-socketio would run through the connect handler again, NOTES.md), client-set ``from``,
cross-tenant kicks, unknown namespaces and events, and the server API.

Every row names its source; every case ends with ``Node.assert_healthy``.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import httpx
import pytest

from tests.security.harness import Node
from tests.support.raw_client import CONNECT_ERROR, encode_event
from tests.support.transport_path import MALFORMED_PACKETS, SECOND_CONNECT, ssoio_only

FORBIDDEN = "forbidden"
INVALID = "invalid_payload"


def code_of(answer: Any) -> str:
    assert isinstance(answer, dict), answer
    if answer.get("ok") is True:
        return "ok"
    assert answer.get("ok") is False, answer
    assert set(answer["error"]) == {"code", "message"}, answer
    return str(answer["error"]["code"])


FULLWIDTH_STAFF = "\uff53\uff54\uff41\uff46\uff46"  # what NFKC folds to "staff"
NFC_CAFE = unicodedata.normalize("NFC", "café")
NFD_CAFE = unicodedata.normalize("NFD", "café")

# (source, user, claim overrides, room, expected)
ROOMS: list[tuple[str, str, dict[str, Any], Any, str]] = [
    ("README room names: literals are case-sensitive ('Staff')", "erin", {}, "Staff", FORBIDDEN),
    ("README room names: case never maps to a rule, even for staff", "bob", {}, "Staff",
     FORBIDDEN),
    ("README room names: no spaces ('staff ')", "bob", {}, "staff ", INVALID),
    ("UTS #39 §4: fullwidth 'staff' (U+FF53...) is not staff", "erin", {}, FULLWIDTH_STAFF,
     FORBIDDEN),
    ("UTS #39 §4: fullwidth 'staff' is not staff, even for staff", "bob", {}, FULLWIDTH_STAFF,
     FORBIDDEN),
    ("CWE-22: 'staff/../tenant:acme:x' is no path", "erin", {}, "staff/../tenant:acme:x",
     FORBIDDEN),
    ("CWE-22: '../staff'", "erin", {}, "../staff", FORBIDDEN),
    ("UTS #39 §3: a zero-width space after a tenant room", "erin", {},
     "tenant:acme:general\u200b", INVALID),
    ("UTS #39 §3: a zero-width joiner inside the tenant", "erin", {},
     "tenant:ac\u200dme:general", INVALID),
    ("CVE-2021-42574 (Trojan Source): a right-to-left override", "erin", {},
     "tenant:acme:\u202egeneral", INVALID),
    ("UTS #39 confusables: a Cyrillic a (U+0430) in the tenant", "erin", {},
     "tenant:\u0430cme:general", FORBIDDEN),
    ("UTS #39 confusables: a fullwidth tenant", "erin", {},
     "tenant:\uff41\uff43\uff4d\uff45:general", FORBIDDEN),
    ("UAX #15: an NFD room for an NFC tenant claim", "erin", {"tenant": NFC_CAFE},
     f"tenant:{NFD_CAFE}:general", FORBIDDEN),
    ("UAX #15: an NFC room for an NFD tenant claim", "erin", {"tenant": NFD_CAFE},
     f"tenant:{NFC_CAFE}:general", FORBIDDEN),
    ("UAX #15 control: the NFC room of an NFC tenant claim", "erin", {"tenant": NFC_CAFE},
     f"tenant:{NFC_CAFE}:general", "ok"),
    ("README: tenant claim '*' never widens access", "erin", {"tenant": "*"},
     "tenant:globex:general", FORBIDDEN),
    ("README: tenant claim 'acme:x' cannot reach tenant:acme:x", "erin", {"tenant": "acme:x"},
     "tenant:acme:x", FORBIDDEN),
    ("README: tenant claim 'acme:x' cannot reach tenant:acme", "erin", {"tenant": "acme:x"},
     "tenant:acme", FORBIDDEN),
    ("README: a percent-encoded tenant is not the tenant", "erin", {},
     "tenant:acme%3Ax:general", FORBIDDEN),
    ("README: tenant claim '' reaches no tenant room", "erin", {"tenant": ""},
     "tenant:acme:general", FORBIDDEN),
    ("DESIGN.md: a globex user and an acme room", "carol", {},
     "tenant:acme:general", FORBIDDEN),
    ("DESIGN.md: another tenant's room", "erin", {}, "tenant:globex:general", FORBIDDEN),
    ("DESIGN.md: another tenant's auto room", "erin", {}, "tenant:globex", FORBIDDEN),
    ("DESIGN.md: another user's room", "erin", {}, "user:alice", FORBIDDEN),
    ("DESIGN.md: staff without the role", "erin", {}, "staff", FORBIDDEN),
    ("DESIGN.md: an uncovered room", "erin", {}, "lobby", FORBIDDEN),
    ("README: the internal prefix r:", "erin", {}, "r:staff", FORBIDDEN),
    ("README: the internal prefix r: of one's own tenant", "erin", {}, "r:tenant:acme",
     FORBIDDEN),
    ("JS confusion: 'null'", "erin", {}, "null", FORBIDDEN),
    ("JS confusion: 'undefined'", "erin", {}, "undefined", FORBIDDEN),
    ("CWE-1321 prototype pollution: '__proto__'", "erin", {}, "__proto__", FORBIDDEN),
    ("CWE-1321 prototype pollution: 'constructor'", "erin", {}, "constructor", FORBIDDEN),
    ("README room names: '*'", "erin", {}, "*", INVALID),
    ("README room names: a wildcard segment", "erin", {}, "tenant:acme:*", INVALID),
    ("README room names: a placeholder '{sub}'", "erin", {}, "{sub}", INVALID),
    ("README room names: a placeholder in a pattern", "erin", {}, "user:{sub}", INVALID),
    ("README room names: empty", "erin", {}, "", INVALID),
    ("README room names: ':' alone", "erin", {}, ":", INVALID),
    ("README room names: an empty segment", "erin", {}, "tenant::general", INVALID),
    ("README room names: a trailing ':'", "erin", {}, "tenant:acme:", INVALID),
    ("README room names: 201 characters", "erin", {}, "tenant:acme:" + "x" * 189, INVALID),
    ("README room names: 17 segments", "erin", {}, ":".join(["tenant", "acme", *"abcdefghijklmno"]),
     INVALID),
    ("README room names: a NUL", "erin", {}, "tenant:acme:\u0000", INVALID),
    ("README room names: a line break", "erin", {}, "tenant:acme:gen\neral", INVALID),
    ("README room names: a tab", "erin", {}, "tenant:acme:general\t", INVALID),
    ("DESIGN.md room:join {room}: a number", "erin", {}, 5, INVALID),
    ("DESIGN.md room:join {room}: null", "erin", {}, None, INVALID),
    ("DESIGN.md room:join {room}: a list", "erin", {}, ["staff"], INVALID),
    ("DESIGN.md room:join {room}: a NoSQL operator", "erin", {}, {"$ne": 1}, INVALID),
    ("DESIGN.md room:join {room}: a boolean", "erin", {}, True, INVALID),
    ("DESIGN.md control: own tenant's room", "erin", {}, "tenant:acme:general", "ok"),
    ("DESIGN.md control: staff for staff", "bob", {}, "staff", "ok"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "user", "claims", "room", "expected"), ROOMS,
                         ids=[r[0] for r in ROOMS])  # fmt: skip
async def test_room_join(
    live: Node, source: str, user: str, claims: dict[str, Any], room: Any, expected: str
) -> None:
    socket, sid = await live.client(user, **claims)
    answer = await socket.call("room:join", {"room": room})
    assert code_of(answer) == expected, (source, answer)
    connection = live.server.gateway.connections.get(sid)
    assert connection is not None
    if expected != "ok":
        assert not isinstance(room, str) or room not in connection.rooms
        # nothing addressed to the room it asked for (or to staff) reaches it
        if isinstance(room, str) and room and expected == FORBIDDEN:
            await live.server.emit("memo", {"to": room}, room=room)
        await live.server.emit("memo", {"to": "staff"}, room="staff")
        await live.barrier(socket, "erin" if user == "erin" else user)
        assert socket.events("memo") == []
    await live.assert_healthy()


async def sid_rooms(live: Node) -> list[tuple[str, str]]:
    assert live.sentinel is not None
    return [("Socket.IO sid", live.sentinel_sid), ("Engine.IO sid", live.sentinel.eio_sid)]


@pytest.mark.parametrize("which", ["Socket.IO sid", "Engine.IO sid"])
async def test_another_clients_sid_is_no_room(live: Node, which: str) -> None:
    """NOTES.md: every client is in a room named by its own sid; README: policy rooms live
    under an internal prefix, so a client can never name another client's sid room."""
    room = dict(await sid_rooms(live))[which]
    socket, _ = await live.client("erin")
    assert code_of(await socket.call("room:join", {"room": room})) == FORBIDDEN
    assert code_of(await socket.call("room:leave", {"room": room})) == "ok"  # a no-op
    assert code_of(await socket.call("presence:list", {"room": room})) == FORBIDDEN
    assert (
        code_of(await socket.call("chat:send", {"room": room, "text": "to the sentinel"}))
        == FORBIDDEN
    )
    assert live.sentinel is not None
    assert live.sentinel.events("chat:message") == []
    await live.assert_healthy()


# -- forged connect / disconnect events -------------------------------------------------------

FORGED: list[tuple[str, str, list[Any]]] = [
    ("NOTES.md: 'connect' with another user's token", "connect", ["ALICE"]),
    ("NOTES.md: 'connect' with a forged environ and auth", "connect",
     [{"REMOTE_ADDR": "10.0.0.9", "HTTP_ORIGIN": "https://evil.example"}, {"token": "ALICE"}]),
    ("NOTES.md: 'connect' without arguments", "connect", []),
    ("NOTES.md: 'disconnect' with a reason", "disconnect", ["transport close"]),
    ("NOTES.md: 'disconnect' without arguments", "disconnect", []),
    ("Socket.IO v5 reserved: 'connect_error'", "connect_error", [{"message": "x"}]),
    ("Socket.IO v5 reserved: 'disconnecting'", "disconnecting", []),
    ("Socket.IO v5 reserved: 'newListener'", "newListener", ["chat:message"]),
    ("Socket.IO v5 reserved: 'removeListener'", "removeListener", ["auth:revoked"]),
]  # fmt: skip


@pytest.mark.parametrize(("source", "name", "args"), FORGED, ids=[f[0] for f in FORGED])
async def test_forged_reserved_event_is_dropped(
    live: Node, source: str, name: str, args: list[Any]
) -> None:
    socket, sid = await live.client("erin")
    accepted = live.accepted()
    alice = live.token("alice")
    args = [{"token": alice} if a == "ALICE" else a for a in args]
    answer = await socket.call(name, *args)
    assert code_of(answer) == "unknown_event", (source, answer)
    assert live.accepted() == accepted, "the connect handler ran again"
    assert not live.logs.audit("auth.disconnect"), "the disconnect handler ran"
    connection = live.server.gateway.connections.get(sid)
    assert connection is not None, "the connection was dropped"
    assert connection.principal.subject == "erin"
    assert code_of(await socket.call("room:join", {"room": "staff"})) == FORBIDDEN
    await live.assert_healthy()


@pytest.mark.parametrize("with_ack", [True, False], ids=["with an ack", "without an ack"])
async def test_forged_connect_without_ack_changes_nothing(live: Node, with_ack: bool) -> None:
    """NOTES.md: python-socketio re-runs the connect handler for an event named connect."""
    socket, sid = await live.client("erin")
    await socket.emit("connect", {"token": live.token("alice")}, ack=with_ack)
    assert code_of(await socket.call("room:join", {"room": "staff"})) == FORBIDDEN
    assert live.accepted() == 1
    connection = live.server.gateway.connections.get(sid)
    assert connection is not None
    assert connection.principal.subject == "erin"
    await live.assert_healthy()


async def test_second_connect_packet_does_not_rerun_the_handler(live: Node) -> None:
    """Socket.IO v5: a CONNECT to a namespace the client is already connected to."""
    socket, sid = await live.client("erin")
    answer = await socket.connect({"token": live.token("alice")})
    assert answer is not None
    assert answer.type == CONNECT_ERROR, answer.raw
    assert live.accepted() == 1
    connection = live.server.gateway.connections.get(sid)
    assert connection is not None
    assert connection.principal.subject == "erin"
    assert len(live.server.gateway.connections) == 2  # erin and the sentinel
    await live.assert_healthy()


@ssoio_only(SECOND_CONNECT)
async def test_second_connect_packet_is_answered_with_a_wire_code(live: Node) -> None:
    """DESIGN.md: a refused connect is connect_error {message, data: {code, message}}."""
    socket, _ = await live.client("erin")
    answer = await socket.connect({"token": live.token("alice")})
    try:
        assert answer is not None
        assert isinstance(answer.data, dict), answer.raw
        assert answer.data["message"] in ("unauthorized", "forbidden")
        assert set(answer.data["data"]) == {"code", "message"}
    finally:
        await live.assert_healthy()


BAD_EVENT_FRAMES: list[tuple[str, str]] = [
    ("Socket.IO v5 §EVENT: the name is a number", '421[5,{"room":"staff"}]'),
    ("Socket.IO v5 §EVENT: no name", "421[]"),
    ("Socket.IO v5 §EVENT: the name is null", "421[null]"),
    ("Socket.IO v5 §EVENT: the name is a list", '421[["connect"],{}]'),
]
# Not an array at all: a malformed packet, which closes the session as the others do
# (the official Socket.IO protocol suite's `42{}`), with or without an ack id
MALFORMED_EVENT_FRAMES: list[tuple[str, str]] = [
    ("Socket.IO v5 §EVENT: the data is an object", '421{"0":"connect"}'),
    ("Socket.IO v5 §EVENT: the data is a string", '421"connect"'),
    ("socket.io-protocol test suite: 42{}", "42{}"),
]


# python-socketio fails on these before any handler runs (the stock path)
_NAMELESS_SSOIO_ONLY = {"421[]", '421[["connect"],{}]', '421{"0":"connect"}'}


@pytest.mark.parametrize(
    ("source", "frame"),
    [
        pytest.param(
            *bad, marks=[ssoio_only(MALFORMED_PACKETS)] if bad[1] in _NAMELESS_SSOIO_ONLY else []
        )
        for bad in BAD_EVENT_FRAMES
    ],
    ids=[b[0] for b in BAD_EVENT_FRAMES],
)
async def test_event_without_a_name(live: Node, source: str, frame: str) -> None:
    socket, sid = await live.client("erin")
    await socket.send(frame)
    assert code_of(await socket.ack_for(1)) == INVALID, source
    assert live.server.gateway.connections.get(sid) is not None
    await live.assert_healthy()


@ssoio_only(MALFORMED_PACKETS)
@pytest.mark.parametrize(
    ("source", "frame"), MALFORMED_EVENT_FRAMES, ids=[b[0] for b in MALFORMED_EVENT_FRAMES]
)
async def test_event_that_is_no_array_closes_the_session(
    live: Node, source: str, frame: str
) -> None:
    socket, sid = await live.client("erin")
    await socket.send(frame)
    assert await socket.wait_closed(), source
    assert live.server.gateway.connections.get(sid) is None
    await live.assert_healthy()


# -- events ----------------------------------------------------------------------------------

# (source, sender, claim overrides, event, payload, expected)
EVENTS: list[tuple[str, str, dict[str, Any], str, Any, str]] = [
    ("DESIGN.md: a client-set from in chat:send", "erin", {}, "chat:send",
     {"room": "tenant:acme:general", "text": "hi", "from": {"sub": "alice"}}, INVALID),
    ("DESIGN.md: a client-set from as a string", "erin", {}, "chat:send",
     {"room": "tenant:acme:general", "text": "hi", "from": "alice"}, INVALID),
    ("DESIGN.md: a client-set from in an announcement", "alice", {}, "broadcast_announcement",
     {"text": "hi", "from": {"sub": "bob"}}, INVALID),
    ("README events: an undeclared field", "erin", {}, "chat:send",
     {"room": "tenant:acme:general", "text": "hi", "html": "<b>"}, INVALID),
    ("DESIGN.md: publish to another tenant's room never joined", "erin", {}, "chat:send",
     {"room": "tenant:globex:general", "text": "hi"}, FORBIDDEN),
    ("DESIGN.md: publish to staff without the role", "erin", {}, "chat:send",
     {"room": "staff", "text": "hi"}, FORBIDDEN),
    ("DESIGN.md: publish to another user's room", "erin", {}, "chat:send",
     {"room": "user:bob", "text": "hi"}, FORBIDDEN),
    ("DESIGN.md: publish to the tenant auto room (publish nobody)", "erin", {}, "chat:send",
     {"room": "tenant:acme", "text": "hi"}, FORBIDDEN),
    ("DESIGN.md: chat:send without the chat scope", "dave", {}, "chat:send",
     {"room": "tenant:acme:general", "text": "hi"}, FORBIDDEN),
    ("DESIGN.md: publish to an own-tenant room not joined (publish permission suffices)",
     "erin", {}, "chat:send", {"room": "tenant:acme:random", "text": "hi"}, "ok"),
    ("README events: text over max_length", "erin", {}, "chat:send",
     {"room": "tenant:acme:general", "text": "x" * 2001}, INVALID),
    ("README events: text a number", "erin", {}, "chat:send",
     {"room": "tenant:acme:general", "text": 5}, INVALID),
    ("README events: text missing", "erin", {}, "chat:send", {"room": "tenant:acme:general"},
     INVALID),
    ("README events: a room field with a wildcard", "erin", {}, "chat:send",
     {"room": "tenant:acme:*", "text": "hi"}, INVALID),
    ("README events: the payload a list", "erin", {}, "chat:send",
     [{"room": "tenant:acme:general", "text": "hi"}], INVALID),
    ("README events: the payload a string", "erin", {}, "chat:send", "hi", INVALID),
    ("DESIGN.md: an announcement without the admin role", "erin", {}, "broadcast_announcement",
     {"text": "hi"}, FORBIDDEN),
    ("DESIGN.md: a kick without the admin role", "erin", {}, "admin:kick", {"sub": "dave"},
     FORBIDDEN),
    ("DESIGN.md: a kick by another tenant's user", "carol", {}, "admin:kick", {"sub": "dave"},
     FORBIDDEN),
    ("README events: a kick target as a NoSQL operator", "alice", {}, "admin:kick",
     {"sub": {"$ne": ""}}, INVALID),
    ("README events: a kick target as a list", "alice", {}, "admin:kick", {"sub": ["dave"]},
     INVALID),
    ("README events: a kick with an extra field", "alice", {}, "admin:kick",
     {"sub": "dave", "tenant": "globex"}, INVALID),
    ("DESIGN.md: presence of another tenant's room", "erin", {}, "presence:list",
     {"room": "tenant:globex:general"}, FORBIDDEN),
    ("DESIGN.md: presence of staff without the role", "erin", {}, "presence:list",
     {"room": "staff"}, FORBIDDEN),
    ("DESIGN.md: an unknown event", "erin", {}, "orders:update", {}, "unknown_event"),
    ("DESIGN.md: a built-in name in another case", "erin", {}, "room:JOIN",
     {"room": "tenant:acme:general"}, "unknown_event"),
    ("DESIGN.md: a built-in name with a trailing space", "erin", {}, "room:join ",
     {"room": "tenant:acme:general"}, "unknown_event"),
    ("DESIGN.md: a built-in name with a NUL", "erin", {}, "room:join\u0000",
     {"room": "tenant:acme:general"}, "unknown_event"),
    ("DESIGN.md: a server event sent by a client (auth:revoked)", "erin", {}, "auth:revoked",
     {"code": "kicked"}, "unknown_event"),
    ("DESIGN.md: a server event sent by a client (auth:expiring)", "erin", {}, "auth:expiring",
     {"expires_in": 1}, "unknown_event"),
    ("DESIGN.md: a delivered name sent by a client (chat:message)", "erin", {}, "chat:message",
     {"room": "tenant:acme", "text": "x", "from": {"sub": "alice"}}, "unknown_event"),
    ("DESIGN.md: a 10,000-character event name", "erin", {}, "x" * 10_000, {},
     "unknown_event"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "user", "claims", "event", "payload", "expected"), EVENTS,
                         ids=[e[0] for e in EVENTS])  # fmt: skip
async def test_event(
    live: Node, source: str, user: str, claims: dict[str, Any], event: str, payload: Any,
    expected: str,
) -> None:  # fmt: skip
    socket, sid = await live.client(user, **claims)
    await socket.call("room:join", {"room": "tenant:acme:general"})
    answer = await socket.call(event, payload)
    assert code_of(answer) == expected, (source, answer)
    assert live.server.gateway.connections.get(sid) is not None
    assert live.sentinel is not None
    # the sentinel (bob, in tenant:acme) saw no relay of a refused event
    if expected != "ok":
        assert live.sentinel.events("chat:message") == []
        assert live.sentinel.events("announcement") == []
    await live.assert_healthy()


async def test_delivered_from_is_the_servers(live: Node) -> None:
    """DESIGN.md: from is set by the server, never by the client."""
    assert live.sentinel is not None
    await live.sentinel.call("room:join", {"room": "tenant:acme:general"})
    socket, _ = await live.client("erin")
    answer = await socket.call("chat:send", {"room": "tenant:acme:general", "text": "hello"})
    assert code_of(answer) == "ok"
    got = await live.sentinel.wait_event("chat:message", where=lambda d: True)
    assert got == {"room": "tenant:acme:general", "text": "hello",
                   "from": {"sub": "erin", "username": "erin"}}  # fmt: skip
    await live.sentinel.call("room:leave", {"room": "tenant:acme:general"})
    await live.assert_healthy()


async def test_presence_hides_emails_from_non_staff(live: Node) -> None:
    """DESIGN.md field visibility: email only for staff recipients."""
    socket, _ = await live.client("erin")
    await socket.call("room:join", {"room": "tenant:acme:general"})
    answer = await socket.call("presence:list", {"room": "tenant:acme:general"})
    assert code_of(answer) == "ok"
    assert all("email" not in member for member in answer["members"]), answer
    await live.assert_healthy()


# -- kicks across tenants ------------------------------------------------------------------

# (source, admin claim overrides, target user, target claim overrides, kicked)
KICKS: list[tuple[str, dict[str, Any], str, dict[str, Any], int]] = [
    ("DESIGN.md: an admin kicks a user of another tenant", {}, "carol", {}, 0),
    ("README: an admin with tenant claim '*' kicks within acme", {"tenant": "*"}, "dave", {}, 0),
    ("README: an admin with tenant 'acme:x' kicks within acme", {"tenant": "acme:x"}, "dave",
     {}, 0),
    ("DESIGN.md: another tenant's admin kicks an acme user",
     {"tenant": "globex"}, "dave", {}, 0),
    ("DESIGN.md: an admin kicks a user of the same sub at another tenant", {}, "dave",
     {"tenant": "globex"}, 0),
    ("DESIGN.md control: an admin kicks a user of the same tenant", {}, "dave", {}, 1),
]  # fmt: skip


@pytest.mark.parametrize(("source", "admin", "target", "target_claims", "kicked"), KICKS,
                         ids=[k[0] for k in KICKS])  # fmt: skip
async def test_kick(
    live: Node, source: str, admin: dict[str, Any], target: str,
    target_claims: dict[str, Any], kicked: int,
) -> None:  # fmt: skip
    victim, victim_sid = await live.client(target, **target_claims)
    actor, _ = await live.client("alice", **admin)
    answer = await actor.call("admin:kick", {"sub": target})
    assert answer == {"ok": True, "kicked": kicked}, (source, answer)
    if kicked:
        assert await victim.wait_event("auth:revoked") == {"code": "kicked"}
        assert live.server.gateway.connections.get(victim_sid) is None
    else:
        await live.barrier(victim, target)
        assert victim.events("auth:revoked") == []
        assert live.server.gateway.connections.get(victim_sid) is not None
        assert code_of(await victim.call("room:join", {"room": "tenant:acme:general"})) in (
            "ok", FORBIDDEN,
        )  # fmt: skip
    await live.assert_healthy()


# -- namespaces ------------------------------------------------------------------------------

NAMESPACES = ["/admin", "/ADMIN", "/socket.io", "//", "/%2F", "/\u0000", "/" + "a" * 1000,
              "/../", "/ "]  # fmt: skip


@pytest.mark.parametrize("namespace", NAMESPACES, ids=[repr(n)[:40] for n in NAMESPACES])
async def test_unknown_namespace(live: Node, namespace: str) -> None:
    """README: unknown namespaces get namespace_forbidden (not python-socketio's text)."""
    socket = await live.open()
    answer = await socket.connect({"token": live.token("alice")}, namespace)
    assert answer is not None
    assert answer.type == CONNECT_ERROR, answer.raw
    assert answer.data == {"message": "forbidden", "data": {
        "code": "namespace_forbidden", "message": "this namespace is not served"}}  # fmt: skip
    await socket.send(encode_event("room:join", {"room": "staff"}, ack=9, namespace=namespace))
    assert live.accepted() == 0
    # the same session may still connect to "/"; by the time "/" answers, the event sent to
    # the refused namespace has been handled: dropped, unanswered
    welcome = await socket.connect({"token": live.token("erin")})
    assert welcome is not None
    assert welcome.type == 0, welcome.raw
    assert code_of(await socket.call("room:join", {"room": "tenant:acme:general"})) == "ok"
    assert [p for p in socket.received if p.id == 9] == []
    await live.assert_healthy()


async def test_events_to_an_unconnected_namespace_are_dropped(live: Node) -> None:
    socket, _ = await live.client("erin")
    await socket.send(encode_event("room:join", {"room": "staff"}, ack=99, namespace="/admin"))
    assert code_of(await socket.call("room:join", {"room": "tenant:acme:general"})) == "ok"
    assert [p for p in socket.received if p.id == 99] == []
    await live.assert_healthy()


# -- the server API ---------------------------------------------------------------------------

Api = tuple[str, str, Any, str, int, str]  # source, path, body, who, status, code


def _api_token(live: Node, who: str) -> str:
    if who == "backend":
        return live.token("erin", sub="ssoio-backend", scope="ssoio:emit", tenant=...,
                          client_id="ssoio-backend", azp="ssoio-backend")  # fmt: skip
    if who == "forged":
        from tests.support.forge import SigningKey

        attacker = SigningKey(live.key.kid, SigningKey.rsa("attacker").private)
        return live.token("erin", key=attacker, scope="ssoio:emit")
    return live.token(who)


API: list[Api] = [
    ("README server API: a user token without ssoio:emit", "/api/v1/emit",
     {"room": "tenant:acme", "event": "memo", "data": {}}, "erin", 403, FORBIDDEN),
    ("RFC 6750 §3.1: a forged bearer token", "/api/v1/emit",
     {"room": "tenant:acme", "event": "memo", "data": {}}, "forged", 401, "signature_invalid"),
    ("README server API: a reserved name (auth:revoked)", "/api/v1/emit",
     {"room": "tenant:acme", "event": "auth:revoked", "data": {"code": "kicked"}}, "backend",
     400, INVALID),
    ("README server API: a reserved name (connect)", "/api/v1/emit",
     {"room": "tenant:acme", "event": "connect", "data": {}}, "backend", 400, INVALID),
    ("README server API: a reserved name (room:revoked)", "/api/v1/emit",
     {"room": "tenant:acme", "event": "room:revoked", "data": {}}, "backend", 400, INVALID),
    ("README server API: a reserved name (presence:list)", "/api/v1/emit",
     {"room": "tenant:acme", "event": "presence:list", "data": {}}, "backend", 400, INVALID),
    ("README server API: a wildcard room", "/api/v1/emit",
     {"room": "tenant:*", "event": "memo", "data": {}}, "backend", 400, INVALID),
    ("README server API: data a list", "/api/v1/emit",
     {"room": "tenant:acme", "event": "memo", "data": [1]}, "backend", 400, INVALID),
    ("README server API: an event name of 101 characters", "/api/v1/emit",
     {"room": "tenant:acme", "event": "e" * 101, "data": {}}, "backend", 400, INVALID),
    ("README server API: the body a JSON list", "/api/v1/emit", [], "backend", 400, INVALID),
    ("README server API: the body not JSON", "/api/v1/emit", b"room=staff", "backend", 400,
     INVALID),
    ("README server API: a body of 1 MB", "/api/v1/emit",
     {"room": "tenant:acme", "event": "memo", "data": {"x": "x" * 1_000_000}}, "backend",
     413, "payload_too_large"),
    ("README server API: disconnect with sub an object", "/api/v1/disconnect",
     {"sub": {"$ne": ""}}, "backend", 400, INVALID),
    ("README server API: reload without ssoio:admin", "/api/v1/reload", {}, "backend", 403,
     FORBIDDEN),
]  # fmt: skip


@pytest.mark.parametrize(("source", "path", "body", "who", "status", "code"), API,
                         ids=[a[0] for a in API])  # fmt: skip
async def test_server_api_refusal(
    live: Node, source: str, path: str, body: Any, who: str, status: int, code: str
) -> None:
    token = live.remember(_api_token(live, who))
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with httpx.AsyncClient() as http:
        response = await http.post(live.url + path, content=content, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == status, (source, response.text)
    assert response.json()["error"]["code"] == code
    assert live.sentinel is not None
    await live.barrier(live.sentinel, "bob")
    assert live.sentinel.events("auth:revoked") == []
    assert live.sentinel.events("memo") == []
    await live.assert_healthy()


@pytest.mark.parametrize("header", ["", "Basic ZXJpbjpwYXNzd29yZA==", "Bearer", "Token abc"],
                         ids=["none", "Basic", "Bearer alone", "another scheme"])  # fmt: skip
async def test_server_api_without_a_bearer_token(live: Node, header: str) -> None:
    """RFC 6750 §3: 401 with WWW-Authenticate."""
    async with httpx.AsyncClient() as http:
        response = await http.post(live.url + "/api/v1/emit", json={"room": "x", "event": "e"},
                                   headers={"Authorization": header} if header else {})  # fmt: skip
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    await live.assert_healthy()


async def test_server_api_emit_to_a_sid_reaches_nobody(live: Node) -> None:
    """README: policy rooms live under an internal prefix: an emit to the sentinel's sid
    is an emit to an empty policy room."""
    token = live.remember(_api_token(live, "backend"))
    async with httpx.AsyncClient() as http:
        response = await http.post(live.url + "/api/v1/emit", headers={
            "Authorization": f"Bearer {token}"}, json={
            "room": live.sentinel_sid, "event": "memo", "data": {"to": "sid"}})  # fmt: skip
    assert response.status_code == 200, response.text
    assert live.sentinel is not None
    await live.barrier(live.sentinel, "bob")
    assert live.sentinel.events("memo") == []
    await live.assert_healthy()


async def test_a_failing_handler_answers_internal_error_and_leaks_nothing(live: Node) -> None:
    """README (contract extensions): an embedded handler that raises answers the ack with
    ``internal_error``; neither the client nor the log sees its message or a traceback."""
    secret = "db password hunter2 in an exception message"

    @live.server.on("test:boom", requires="authenticated")
    async def boom(_principal: object, _payload: object) -> dict[str, Any]:
        raise RuntimeError(secret)

    socket, _ = await live.client("erin")
    ack = await socket.ack_for(await socket.emit("test:boom", {}))
    assert ack == {"ok": False, "error": {"code": "internal_error", "message": "internal error"}}
    assert any("event.failed name=test:boom kind=RuntimeError" in t for t in live.logs.texts())
    await live.assert_healthy(also_secret=[secret])
