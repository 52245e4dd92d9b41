"""The Engine.IO cases, shared by both suites.

The Socket.IO suite repeats 16 of the Engine.IO suite's 24 cases against ``/socket.io/``
(its upgrade cases without the message exchange); ssoio serves Engine.IO only there, so
each case is written once here and named, marked and documented in both test modules.
Conventions (the node, ``conform``, adaptations): ``tests.transport.wire``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.exceptions import InvalidStatus

from tests.transport.wire import (
    DELIBERATE,
    HEARTBEAT_S,
    MAX_PAYLOAD,
    PING_INTERVAL_MS,
    PING_TIMEOUT_MS,
    QUIET_S,
    WAIT_S,
    Peer,
    Polling,
    conform,
    conform_equal,
    deviates,
    engine_session,
    wait_until,
)

__all__ = [
    "BINARY_REFUSED",
    "close_polling",
    "close_websocket",
    "echo_answer",
    "echo_frame",
    "handshake_polling_bad_eio",
    "handshake_polling_bad_method",
    "handshake_polling_bad_transport",
    "handshake_polling_opens",
    "handshake_websocket_bad_eio",
    "handshake_websocket_bad_transport",
    "handshake_websocket_opens",
    "heartbeat_polling_ping_pong",
    "heartbeat_polling_timeout",
    "heartbeat_websocket_ping_pong",
    "heartbeat_websocket_timeout",
    "upgrade_ignores_http",
    "upgrade_ignores_websocket",
    "upgrade_succeeds",
]

# Why each case ssoio fails today fails (shared: the suites repeat the Engine.IO cases).
BINARY_REFUSED = deviates(
    DELIBERATE,
    "binary messages are not served: ssoio drops binary Engine.IO messages, which can only "
    "be attachments of binary Socket.IO events, which it refuses (python-socketio would "
    "buffer any number of them); the text part of the exchange conforms",
)

OPEN_KEYS = {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}


def echo_frame(ack_id: int, text: str) -> str:
    """The adapted echo: an Engine.IO message carrying ``message-with-ack {text}``."""
    body = json.dumps(["message-with-ack", {"text": text}], separators=(",", ":"))
    return f"42{ack_id}{body}"


def echo_answer(ack_id: int, text: str) -> str:
    """ssoio's answer to ``echo_frame``: the ack ``{"ok": true, "text": ...}``."""
    return f"43{ack_id}{json.dumps([{'ok': True, 'text': text}], separators=(',', ':'))}"


def check_open(value: dict[str, Any], upgrades: list[str]) -> None:
    """The OPEN packet's members, as both suites check them."""
    conform_equal(set(value), OPEN_KEYS)
    conform(isinstance(value["sid"], str), "a string sid", value["sid"])
    conform_equal(value["upgrades"], upgrades)
    conform_equal(value["pingTimeout"], PING_TIMEOUT_MS)
    conform_equal(value["maxPayload"], MAX_PAYLOAD)
    # last: python-engineio 4.x advertises int(ping_interval) * 1000, 0 for 0.3 s
    conform_equal(value["pingInterval"], PING_INTERVAL_MS)


# -- handshake ----------------------------------------------------------------------------


async def handshake_polling_opens(peer: Peer) -> None:
    response = await peer.http.get(f"{peer.url}/socket.io/?EIO=4&transport=polling")
    conform_equal(response.status_code, 200)
    conform(response.text.startswith("0"), "an OPEN packet", response.text)
    check_open(json.loads(response.text[1:]), ["websocket"])


async def handshake_polling_bad_eio(peer: Peer) -> None:
    for query in ("transport=polling", "EIO=abc&transport=polling"):
        response = await peer.http.get(f"{peer.url}/socket.io/?{query}")
        conform_equal(response.status_code, 400)


async def handshake_polling_bad_transport(peer: Peer) -> None:
    # the suite's order reversed: the unknown transport passes, the missing one deviates
    for query in ("EIO=4&transport=abc", "EIO=4"):
        response = await peer.http.get(f"{peer.url}/socket.io/?{query}")
        conform_equal(response.status_code, 400)


async def handshake_polling_bad_method(peer: Peer) -> None:
    # the suite's order: POST (400 from ssoio's TransportGuard: no payload), then PUT
    for method in ("POST", "PUT"):
        response = await peer.http.request(method, f"{peer.url}/socket.io/?EIO=4&transport=polling")
        conform_equal(response.status_code, 400)


async def handshake_websocket_opens(peer: Peer) -> None:
    wire = await peer.ws()
    data = await wire.frame()
    conform(isinstance(data, str) and data.startswith("0"), "an OPEN packet", data)
    assert isinstance(data, str)
    check_open(json.loads(data[1:]), [])


async def _handshake_fails(peer: Peer, query: str) -> None:
    """The suites only start ``waitFor(socket, "close")`` here and await nothing; the
    intent ("fails"): the handshake is refused, or the WebSocket is closed before any
    Engine.IO packet, and no Engine.IO session is left behind."""
    try:
        wire = await peer.ws(query)
    except InvalidStatus:
        closed_early = True
    else:
        first = await wire.frame()
        conform(first is None, "no Engine.IO packet", first)
        closed_early = wire.closed
    conform(closed_early, "the WebSocket closed", "left open")
    conform(not peer.node.server.sio.eio.sockets, "no Engine.IO session", "a session was opened")


async def handshake_websocket_bad_eio(peer: Peer) -> None:
    for query in ("transport=websocket", "EIO=abc&transport=websocket"):
        await _handshake_fails(peer, query)


async def handshake_websocket_bad_transport(peer: Peer) -> None:
    # the suite's order reversed: the unknown transport passes, the missing one deviates
    for query in ("EIO=4&transport=abc", "EIO=4"):
        await _handshake_fails(peer, query)


# -- heartbeat ----------------------------------------------------------------------------


async def heartbeat_polling_ping_pong(peer: Peer) -> None:
    polling = peer.polling()
    await polling.handshake()
    for _ in range(3):
        poll = await polling.get()
        conform_equal(poll.status_code, 200)
        conform_equal(poll.text, "2")
        push = await polling.post("3")
        conform_equal(push.status_code, 200)


async def heartbeat_polling_timeout(peer: Peer) -> None:
    # The suite sleeps exactly pingInterval + pingTimeout, racing the server's check;
    # here: a bounded wait (without polling, which would take the ping) for the session
    # to end, then the suite's poll.
    polling = peer.polling()
    await polling.handshake()
    await asyncio.sleep(HEARTBEAT_S)
    await wait_until(lambda: _ended(peer, polling.sid), WAIT_S)
    poll = await polling.get()
    conform_equal(poll.status_code, 400)


def _ended(peer: Peer, sid: str) -> bool:
    session = engine_session(peer.node, sid)
    return session is None or bool(session.closed)


async def heartbeat_websocket_ping_pong(peer: Peer) -> None:
    wire, _ = await peer.session()
    for _ in range(3):
        data = await wire.frame()
        conform_equal(data, "2")
        await wire.send("3")


async def heartbeat_websocket_timeout(peer: Peer) -> None:
    wire, _ = await peer.session()
    closed = await wire.closed_within(HEARTBEAT_S + WAIT_S, answer_pings=False)
    conform(closed, "the WebSocket closed", "left open")


# -- close --------------------------------------------------------------------------------


async def close_polling(peer: Peer) -> None:
    polling = peer.polling()
    await polling.handshake()
    # The suite sends both at once; the poll gets a head start so it is the one waiting.
    pending = asyncio.create_task(polling.get())
    await asyncio.sleep(0.05)
    await polling.post("1")
    poll = await pending
    conform_equal(poll.status_code, 200)
    conform_equal(poll.text, "6")
    again = await polling.get()
    conform_equal(again.status_code, 400)


async def close_websocket(peer: Peer) -> None:
    wire, _ = await peer.session()
    await wire.send("1")
    conform(await wire.closed_within(), "the WebSocket closed", "left open")


# -- upgrade ------------------------------------------------------------------------------


async def _upgrading(peer: Peer, *, echo: bool) -> tuple[Polling, Any]:
    """A long-polling session (connected to ``/`` with a token when the case will echo:
    ssoio's echo is an acked event) and a WebSocket opened with its sid."""
    polling = peer.polling()
    await polling.handshake()
    if echo:
        await peer.connect_polling(polling)
    wire = await peer.ws(f"EIO=4&transport=websocket&sid={polling.sid}")
    return polling, wire


async def _echo_over(wire: Any) -> None:
    """The Engine.IO suite's closing exchange, adapted: ``4hello`` is the acked event."""
    await wire.send(echo_frame(7, "hello"))
    data = await wire.message()
    conform_equal(data, echo_answer(7, "hello"))


async def upgrade_succeeds(peer: Peer, *, echo: bool) -> None:
    """Engine.IO suite (``echo``): probe, the poll ended with a noop, upgrade, a message
    over the WebSocket. Socket.IO suite: probe and upgrade only."""
    polling, wire = await _upgrading(peer, echo=echo)
    await wire.send("2probe")
    probe = await wire.frame()
    conform_equal(probe, "3probe")
    if echo:
        poll = await polling.get()
        conform_equal(poll.status_code, 200)
        conform_equal(poll.text, "6")  # a noop ends the pending long-poll cleanly
    await wire.send("5")
    if echo:
        await _echo_over(wire)


async def _upgraded(peer: Peer, polling: Polling, wire: Any) -> None:
    """The suites send ``2probe`` and ``5`` and go on without reading: their next request
    races the server reading ``5``. Here: a bounded wait until the server has upgraded."""
    await wire.send("2probe")
    await wire.send("5")
    upgraded = await wait_until(
        lambda: bool(getattr(engine_session(peer.node, polling.sid), "upgraded", False))
    )
    assert upgraded, "the upgrade did not complete"


async def upgrade_ignores_http(peer: Peer, *, echo: bool) -> None:
    polling, wire = await _upgrading(peer, echo=echo)
    await _upgraded(peer, polling, wire)
    poll = await polling.get()
    conform_equal(poll.status_code, 400)
    if echo:
        assert await wire.frame() == "3probe"
        await _echo_over(wire)


async def upgrade_ignores_websocket(peer: Peer, *, echo: bool) -> None:
    polling, wire = await _upgrading(peer, echo=echo)
    await _upgraded(peer, polling, wire)
    try:
        second = await peer.ws(f"EIO=4&transport=websocket&sid={polling.sid}")
    except InvalidStatus:
        pass  # refused at the handshake: closed, as the suite waits for
    else:
        closed = await second.closed_within(QUIET_S + WAIT_S, answer_pings=False)
        conform(closed, "the second WebSocket closed", "left open")
    if echo:
        assert await wire.frame() == "3probe"
        await _echo_over(wire)
