"""The Engine.IO v4 protocol test suite (``socketio/engine.io-protocol``,
``test-suite/test-suite.js``, 24 cases), one test per case, against ssoio's full stack.

Each test is named after its case (``describe`` levels joined by ``__``) and quotes the
case's path in its docstring. How the suite's server is expressed in ssoio, and how the
cases are adapted (``/socket.io/`` for ``/engine.io/``, the echo as an acked Socket.IO
event on an authenticated connection): ``tests.transport.wire``.
"""

from __future__ import annotations

import asyncio

from tests.support.transport_path import (
    ENGINE_CONFORMANCE,
    MALFORMED_PACKETS,
    POLL_ENDS_WITH_NOOP,
    ssoio_only,
)
from tests.transport import cases
from tests.transport.cases import echo_answer, echo_frame
from tests.transport.wire import (
    QUIET_S,
    RECORD_SEPARATOR,
    Peer,
    conform,
    conform_equal,
    engine_session,
    wait_until,
)

# -- handshake ----------------------------------------------------------------------------


@ssoio_only(ENGINE_CONFORMANCE)
async def test_handshake__http_long_polling__successfully_opens_a_session(peer: Peer) -> None:
    """Engine.IO protocol > handshake > HTTP long-polling > successfully opens a session"""
    await cases.handshake_polling_opens(peer)


async def test_handshake__http_long_polling__fails_with_an_invalid_eio_query_parameter(
    peer: Peer,
) -> None:
    """Engine.IO protocol > handshake > HTTP long-polling > fails with an invalid 'EIO' query
    parameter"""
    await cases.handshake_polling_bad_eio(peer)


async def test_handshake__http_long_polling__fails_with_an_invalid_transport_query_parameter(
    peer: Peer,
) -> None:
    """Engine.IO protocol > handshake > HTTP long-polling > fails with an invalid
    'transport' query parameter"""
    await cases.handshake_polling_bad_transport(peer)


async def test_handshake__http_long_polling__fails_with_an_invalid_request_method(
    peer: Peer,
) -> None:
    """Engine.IO protocol > handshake > HTTP long-polling > fails with an invalid request
    method"""
    await cases.handshake_polling_bad_method(peer)


@ssoio_only(ENGINE_CONFORMANCE)
async def test_handshake__websocket__successfully_opens_a_session(peer: Peer) -> None:
    """Engine.IO protocol > handshake > WebSocket > successfully opens a session"""
    await cases.handshake_websocket_opens(peer)


async def test_handshake__websocket__fails_with_an_invalid_eio_query_parameter(
    peer: Peer,
) -> None:
    """Engine.IO protocol > handshake > WebSocket > fails with an invalid 'EIO' query
    parameter

    The suite awaits nothing here; this test checks what the title says."""
    await cases.handshake_websocket_bad_eio(peer)


async def test_handshake__websocket__fails_with_an_invalid_transport_query_parameter(
    peer: Peer,
) -> None:
    """Engine.IO protocol > handshake > WebSocket > fails with an invalid 'transport' query
    parameter

    The suite awaits nothing here; this test checks what the title says."""
    await cases.handshake_websocket_bad_transport(peer)


# -- message ------------------------------------------------------------------------------


async def test_message__http_long_polling__sends_and_receives_a_payload_containing_one_plain_text_packet(  # noqa: E501
    peer: Peer,
) -> None:
    """Engine.IO protocol > message > HTTP long-polling > sends and receives a payload
    containing one plain text packet

    Adapted: the session is connected first (a token), the packet is the acked echo event
    and its echo the ack. The POST's body is checked last."""
    polling = peer.polling()
    await polling.handshake()
    await peer.connect_polling(polling)
    push = await polling.post(echo_frame(1, "hello"))
    conform_equal(push.status_code, 200)
    polled = await polling.messages(1)
    conform_equal(polled, [echo_answer(1, "hello")])
    conform_equal(push.text, "ok")


async def test_message__http_long_polling__sends_and_receives_a_payload_containing_several_plain_text_packets(  # noqa: E501
    peer: Peer,
) -> None:
    """Engine.IO protocol > message > HTTP long-polling > sends and receives a payload
    containing several plain text packets

    Adapted as the one-packet case, with three echo events in one payload. The three acks
    are polled once all are queued (the events run concurrently: Socket.IO does not order
    acks, so the payload is compared as a set). The POST's body is checked last."""
    polling = peer.polling()
    await polling.handshake()
    await peer.connect_polling(polling)
    texts = {n: f"test{n}" for n in (1, 2, 3)}
    push = await polling.post(RECORD_SEPARATOR.join(echo_frame(n, t) for n, t in texts.items()))
    conform_equal(push.status_code, 200)
    session = engine_session(peer.node, polling.sid)
    assert await wait_until(lambda: session.queue.qsize() >= len(texts)), "acks not queued"
    poll = await polling.get()
    conform_equal(poll.status_code, 200)
    frames = poll.text.split(RECORD_SEPARATOR)
    conform_equal(sorted(frames), sorted(echo_answer(n, t) for n, t in texts.items()))
    conform_equal(push.text, "ok")


@ssoio_only(MALFORMED_PACKETS)
@cases.BINARY_REFUSED
async def test_message__http_long_polling__sends_and_receives_a_payload_containing_plain_text_and_binary_packets(  # noqa: E501
    peer: Peer,
) -> None:
    """Engine.IO protocol > message > HTTP long-polling > sends and receives a payload
    containing plain text and binary packets

    Adapted as the one-packet case for the text packet; the binary packet (``b`` +
    base64 of 01 02 03 04) is the suite's, echoed by its server."""
    polling = peer.polling()
    await polling.handshake()
    await peer.connect_polling(polling)
    push = await polling.post(echo_frame(1, "hello") + RECORD_SEPARATOR + "bAQIDBA==")
    conform_equal(push.status_code, 200)
    polled = await polling.messages(2, timeout_s=QUIET_S + 1)
    assert echo_answer(1, "hello") in polled, polled  # the text packet was answered
    conform_equal(polled, [echo_answer(1, "hello"), "bAQIDBA=="])
    conform_equal(push.text, "ok")


async def test_message__http_long_polling__closes_the_session_upon_invalid_packet_format(
    peer: Peer,
) -> None:
    """Engine.IO protocol > message > HTTP long-polling > closes the session upon invalid
    packet format"""
    polling = peer.polling()
    await polling.handshake()
    push = await polling.post("abc")
    conform_equal(push.status_code, 400)
    poll = await polling.get()
    conform_equal(poll.status_code, 400)


@ssoio_only(ENGINE_CONFORMANCE)
async def test_message__http_long_polling__closes_the_session_upon_duplicate_poll_requests(
    peer: Peer,
) -> None:
    """Engine.IO protocol > message > HTTP long-polling > closes the session upon duplicate
    poll requests"""
    polling = peer.polling()
    await polling.handshake()
    first = asyncio.create_task(polling.get())
    await asyncio.sleep(0.005)  # the suite's delay between the two polls
    second = await polling.get("&t=burst")
    polled = await first
    conform_equal(polled.status_code, 200)
    conform_equal(polled.text, "1")
    # "the Node.js implementation uses HTTP 500 (Internal Server Error), but HTTP 400
    # seems more suitable"
    conform(second.status_code in (400, 500), "400 or 500", second.status_code)
    after = await polling.get()
    conform_equal(after.status_code, 400)


async def test_message__websocket__sends_and_receives_a_plain_text_packet(peer: Peer) -> None:
    """Engine.IO protocol > message > WebSocket > sends and receives a plain text packet

    Adapted: connected first (a token); the packet is the acked echo event."""
    wire = await peer.connected()
    await wire.send(echo_frame(1, "hello"))
    conform_equal(await wire.message(), echo_answer(1, "hello"))


@ssoio_only(MALFORMED_PACKETS)
@cases.BINARY_REFUSED
async def test_message__websocket__sends_and_receives_a_binary_packet(peer: Peer) -> None:
    """Engine.IO protocol > message > WebSocket > sends and receives a binary packet

    The binary frame is the suite's; an acked echo event follows it, so the answer comes
    without waiting out a bound: the binary echo must come first."""
    wire = await peer.connected()
    await wire.send(bytes([1, 2, 3, 4]))
    await wire.send(echo_frame(2, "after"))
    first = await wire.message()
    assert first is not None, "the session ended"
    conform_equal(first, bytes([1, 2, 3, 4]))


async def test_message__websocket__closes_the_session_upon_invalid_packet_format(
    peer: Peer,
) -> None:
    """Engine.IO protocol > message > WebSocket > closes the session upon invalid packet
    format"""
    wire, _ = await peer.session()
    await wire.send("abc")
    conform(await wire.closed_within(), "the WebSocket closed", "left open")


# -- heartbeat ----------------------------------------------------------------------------


async def test_heartbeat__http_long_polling__sends_ping_pong_packets(peer: Peer) -> None:
    """Engine.IO protocol > heartbeat > HTTP long-polling > sends ping/pong packets"""
    await cases.heartbeat_polling_ping_pong(peer)


async def test_heartbeat__http_long_polling__closes_the_session_upon_ping_timeout(
    peer: Peer,
) -> None:
    """Engine.IO protocol > heartbeat > HTTP long-polling > closes the session upon ping
    timeout

    The suite polls at exactly pingInterval + pingTimeout; here after a bounded wait."""
    await cases.heartbeat_polling_timeout(peer)


async def test_heartbeat__websocket__sends_ping_pong_packets(peer: Peer) -> None:
    """Engine.IO protocol > heartbeat > WebSocket > sends ping/pong packets"""
    await cases.heartbeat_websocket_ping_pong(peer)


async def test_heartbeat__websocket__closes_the_session_upon_ping_timeout(peer: Peer) -> None:
    """Engine.IO protocol > heartbeat > WebSocket > closes the session upon ping timeout"""
    await cases.heartbeat_websocket_timeout(peer)


# -- close --------------------------------------------------------------------------------


@ssoio_only(POLL_ENDS_WITH_NOOP)
async def test_close__http_long_polling__forcefully_closes_the_session(peer: Peer) -> None:
    """Engine.IO protocol > close > HTTP long-polling > forcefully closes the session"""
    await cases.close_polling(peer)


async def test_close__websocket__forcefully_closes_the_session(peer: Peer) -> None:
    """Engine.IO protocol > close > WebSocket > forcefully closes the session"""
    await cases.close_websocket(peer)


# -- upgrade ------------------------------------------------------------------------------


@ssoio_only(ENGINE_CONFORMANCE)
async def test_upgrade__successfully_upgrades_from_http_long_polling_to_websocket(
    peer: Peer,
) -> None:
    """Engine.IO protocol > upgrade > successfully upgrades from HTTP long-polling to
    WebSocket

    Adapted: the long-polling session is connected first (a token); ``4hello`` is the
    acked echo event."""
    await cases.upgrade_succeeds(peer, echo=True)


@ssoio_only(ENGINE_CONFORMANCE)
async def test_upgrade__ignores_http_requests_with_same_sid_after_upgrade(peer: Peer) -> None:
    """Engine.IO protocol > upgrade > ignores HTTP requests with same sid after upgrade

    Adapted as the previous case; the poll waits (bounded) for the upgrade to complete."""
    await cases.upgrade_ignores_http(peer, echo=True)


@ssoio_only(ENGINE_CONFORMANCE)
async def test_upgrade__ignores_websocket_connection_with_same_sid_after_upgrade(
    peer: Peer,
) -> None:
    """Engine.IO protocol > upgrade > ignores WebSocket connection with same sid after
    upgrade

    Adapted as the previous case."""
    await cases.upgrade_ignores_websocket(peer, echo=True)
