"""Every way an Engine.IO session ends ends its transport: the WebSocket is closed by the
server, a pending long-poll is answered, and no TCP connection stays held.

Checked where the client is: the raw WebSocket sees the server's close within a bounded
wait, and the kernel's TCP table (``/proc/net/tcp``) shows the node holding no
connection for it, not only the gateway's bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.security.harness import Node, running_node, settings_from
from tests.support.forge import SigningKey
from tests.support.polling import eventually
from tests.support.raw_client import PollingSession, RawSocket, upgrade_websocket
from tests.support.transport_path import (
    BACKLOG_LIMIT,
    MALFORMED_PACKETS,
    PING_TIMEOUT,
    POLL_ENDS_WITH_NOOP,
    ssoio_only,
)

CLOSE_WAIT_S = 2.0  # a bound, not a timing assertion: the closes come at once
BACKLOG = 20  # realtime.max_backlog_packets of the module's node
# TCP states of a connection the node still holds: established, or the peer has closed
# and the node has not (close-wait). /proc/net/tcp state codes (include/net/tcp_states.h).
_HELD = {"01", "08"}


@pytest.fixture(scope="module")
async def node(rsa_key: SigningKey) -> AsyncIterator[Node]:
    settings = settings_from(realtime={"max_backlog_packets": BACKLOG})
    async with running_node(settings, key=rsa_key) as running:
        yield running


def held_connections(url: str) -> int:
    """TCP connections whose node end (local port = the node's) is established or in
    close-wait: what the node holds open, whatever ssoio's bookkeeping says."""
    port = f"{int(url.rsplit(':', 1)[1]):04X}"
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[1].rsplit(":", 1)[1] == port and fields[3] in _HELD:
                    held += 1
    return held


async def held_settles(live: Node, expected: int) -> int:
    """The node's held connections once they reach ``expected`` (bounded wait)."""
    await eventually(lambda: held_connections(live.url) <= expected)
    return held_connections(live.url)


def close_code(socket: RawSocket) -> int | None:
    """The code of the close frame the server sent, None if the TCP connection ended
    without one."""
    received = socket.ws.protocol.close_rcvd
    return None if received is None else int(received.code)


async def closed_by_server(socket: RawSocket) -> bool:
    """The server closed this WebSocket within the bound (the client did not)."""
    return await socket.wait_closed(CLOSE_WAIT_S)


class TestEverySessionEndClosesTheTransport:
    """Each way a session ends, seen from the client's socket."""

    async def test_a_client_close_before_connect(self, live: Node) -> None:
        """Engine.IO v4 "close": a client's CLOSE ends the session; the official suite's
        "forcefully closes the session" wants the WebSocket closed too."""
        baseline = held_connections(live.url)
        socket = await live.open()
        await socket.send("1")
        assert await closed_by_server(socket), "the WebSocket stayed open after CLOSE"
        assert close_code(socket) == 1000
        assert await held_settles(live, baseline) <= baseline
        await live.assert_healthy()

    async def test_a_client_close_after_an_authenticated_connect(self, live: Node) -> None:
        baseline = held_connections(live.url)
        socket, sid = await live.client("erin")
        await socket.send("1")
        assert await closed_by_server(socket), "the WebSocket stayed open after CLOSE"
        assert close_code(socket) == 1000
        assert live.server.gateway.connections.get(sid) is None
        assert await held_settles(live, baseline) <= baseline
        await live.assert_healthy()

    async def test_the_server_closes_an_unauthenticated_session(self, live: Node) -> None:
        socket = await live.open()
        live.clock.advance(live.server.settings.realtime.unauthenticated_timeout_s + 0.1)
        await live.server.gateway.tick()
        assert await closed_by_server(socket)
        assert socket.ended, "no Engine.IO CLOSE before the WebSocket close"
        await live.assert_healthy()

    @ssoio_only(MALFORMED_PACKETS)
    async def test_the_server_closes_after_a_malformed_socketio_packet(self, live: Node) -> None:
        """server.py: a packet python-socketio cannot decode ends the session."""
        socket, sid = await live.client("erin")
        await socket.send('427["room:join",')
        assert await closed_by_server(socket)
        assert live.server.gateway.connections.get(sid) is None
        await live.assert_healthy()

    async def test_a_malformed_engineio_frame(self, live: Node) -> None:
        """TransportGuard: RFC 6455 §7.4.1 1002 (protocol error)."""
        socket = await live.open()
        await socket.send("x")
        assert await closed_by_server(socket)
        assert close_code(socket) == 1002
        await live.assert_healthy()

    async def test_the_client_drops_the_connection(self, live: Node) -> None:
        """The node lets go of a connection whose client vanished (no close frame)."""
        baseline = held_connections(live.url)
        socket, sid = await live.client("erin")
        socket.ws.transport.abort()
        assert await held_settles(live, baseline) <= baseline
        assert await eventually(lambda: socket.eio_sid not in live.server.sio.eio.sockets)
        assert live.server.gateway.connections.get(sid) is None
        await live.assert_healthy()

    @pytest.mark.parametrize("probe", ["2nope", "5", "1"])
    async def test_a_failed_upgrade_closes_the_probe_websocket(
        self, live: Node, probe: str
    ) -> None:
        """Engine.IO v4 "Upgrade": the WebSocket that failed to upgrade is closed."""
        async with httpx.AsyncClient() as http:
            session = await PollingSession.open(http, live.url)
            ws = await upgrade_websocket(live.url, session.sid)
            await ws.send(probe)
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), CLOSE_WAIT_S)
                raise AssertionError("the probe WebSocket answered a bad probe")
            await session.close()
        await live.assert_healthy()

    async def test_an_upgrade_after_the_session_ended(self, live: Node) -> None:
        """A session that ends while its upgrade is under way leaves no WebSocket behind."""
        async with httpx.AsyncClient() as http:
            session = await PollingSession.open(http, live.url)
            ws = await upgrade_websocket(live.url, session.sid)
            await ws.send("2probe")
            assert await asyncio.wait_for(ws.recv(), CLOSE_WAIT_S) == "3probe"
            await live.server.sio.close_session(session.sid)
            await ws.send("5")
            with contextlib.suppress(ConnectionClosed):
                while True:  # a NOOP for the pending poll may come first
                    await asyncio.wait_for(ws.recv(), CLOSE_WAIT_S)
        await live.assert_healthy()

    @ssoio_only(BACKLOG_LIMIT)
    async def test_a_client_that_never_reads_is_cut_off_at_the_backlog_limit(
        self, live: Node
    ) -> None:
        """README realtime.max_backlog_packets: the session ends and its socket with it;
        the writer is stuck on a full socket, so nothing more is written, and the
        connection ends once the client reads what it had been sent."""
        baseline = held_connections(live.url)
        slow, slow_sid = await live.client("erin")
        socket = live.server.sio.eio.sockets[slow.eio_sid]
        blob = "x" * 32_000
        for n in range(40 * BACKLOG):
            if live.server.gateway.connections.get(slow_sid) is None:
                break
            await live.server.emit("bulk", {"n": n, "blob": blob}, room="user:erin")
            await asyncio.sleep(0)
        assert live.server.gateway.connections.get(slow_sid) is None, "never cut off"
        assert socket.queue.qsize() <= 1
        read = 0
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(10):
                async for _ in slow.ws:
                    read += 1
        assert slow.ws.state.name == "CLOSED", "the server kept the socket"
        assert await held_settles(live, baseline) <= baseline
        await live.assert_healthy()

    @ssoio_only(POLL_ENDS_WITH_NOOP)
    async def test_a_client_close_ends_the_pending_long_poll(self, live: Node) -> None:
        """Engine.IO v4 polling: a POSTed CLOSE answers the pending GET at once (it used
        to wait for ping_interval + ping_timeout, 45 s)."""
        async with httpx.AsyncClient() as http:
            session = await PollingSession.open(http, live.url)
            pending = asyncio.create_task(session.get(timeout_s=CLOSE_WAIT_S + 1))
            await asyncio.sleep(0.05)  # the GET is waiting on the server
            response = await session.post("1")
            assert response.status_code == 200
            status, frames = await asyncio.wait_for(pending, CLOSE_WAIT_S)
            assert status == 200
            assert frames == ["6"], frames  # NOOP, as the Engine.IO reference server
            status, _ = await session.get()
            assert status == 400  # the session is gone
        await live.assert_healthy()

    async def test_the_server_close_ends_the_pending_long_poll(self, live: Node) -> None:
        async with httpx.AsyncClient() as http:
            session = await PollingSession.open(http, live.url)
            pending = asyncio.create_task(session.get(timeout_s=CLOSE_WAIT_S + 1))
            await asyncio.sleep(0.05)
            await live.server.sio.close_session(session.sid)
            status, frames = await asyncio.wait_for(pending, CLOSE_WAIT_S)
            assert (status, frames) == (200, ["1"])
        await live.assert_healthy()

    @pytest.mark.parametrize("packet", ["4hello", "42[", '42["chat:send",{', "4" + "[" * 500])
    @ssoio_only(MALFORMED_PACKETS)
    async def test_a_malformed_socketio_packet_over_long_polling(
        self, live: Node, packet: str
    ) -> None:
        """Found by the protocol conformance tests: the POST carrying a packet python-socketio
        cannot decode was never answered (python-engineio's disconnect waited for a GET the
        closed session could no longer get), holding its request, its task and ~43 KiB
        until the node stopped, for any client without a credential. Now it is answered,
        the session closed, and the pending GET ends."""
        async with httpx.AsyncClient() as http:
            session = await PollingSession.open(http, live.url)
            pending = asyncio.create_task(session.get(timeout_s=CLOSE_WAIT_S + 1))
            await asyncio.sleep(0.05)  # the GET is waiting on the server
            response = await asyncio.wait_for(session.post(packet), CLOSE_WAIT_S)
            assert response.status_code in (200, 400)
            status, frames = await asyncio.wait_for(pending, CLOSE_WAIT_S)
            assert status == 200
            assert frames in (["1"], ["6"]), frames
            assert await eventually(lambda: session.sid not in live.server.sio.eio.sockets)
        assert not live.server.sio.pending_events
        await live.assert_healthy()


async def test_close_cannot_hold_sockets_beyond_the_per_ip_cap(live: Node) -> None:
    """README realtime.max_unauthenticated_per_ip: a client opening sessions and ending
    each with CLOSE held every WebSocket open (the session gone, the socket not), so the
    cap bounded nothing. Now each socket is closed by the server and the node holds no
    more connections than before."""
    cap = live.server.settings.realtime.max_unauthenticated_per_ip
    baseline = held_connections(live.url)
    sockets = []
    for _ in range(cap + 10):
        socket = await live.open()
        await socket.send("1")
        sockets.append(socket)
    closed = [await closed_by_server(socket) for socket in sockets]
    held = await held_settles(live, baseline)
    assert all(closed), f"{closed.count(False)} of {len(closed)} sockets left open"
    assert held <= baseline, f"the node holds {held - baseline} more connections"
    await live.assert_healthy()


# -- heartbeats and shutdown: nodes of their own ------------------------------------------


@ssoio_only(PING_TIMEOUT)
async def test_a_ping_timeout_closes_the_websocket(rsa_key: SigningKey) -> None:
    """Engine.IO v4 "Heartbeat": the sweep ends the session, CLOSE then the WebSocket."""
    settings = settings_from(realtime={"ping_interval_s": 0.2, "ping_timeout_s": 0.3})
    async with running_node(settings, key=rsa_key, sentinel=False) as node:
        socket = await node.open()
        frames: list[str | bytes] = []
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(5):
                async for frame in socket.ws:  # never answers a ping
                    frames.append(frame)
        assert frames[-1:] == ["1"], frames
        assert socket.ws.protocol.close_rcvd is not None, "no close frame from the server"


async def test_a_drain_closes_every_websocket(rsa_key: SigningKey) -> None:
    """README shutdown: draining ends every session and closes its socket, so clients
    reconnect elsewhere at once."""
    async with running_node(settings_from(), key=rsa_key, sentinel=False) as node:
        baseline = held_connections(node.url)
        sockets = [await node.open() for _ in range(3)]
        sockets.append((await node.client("erin"))[0])
        await asyncio.wait_for(node.server.drain(grace_s=0.1), 5)
        closed = [await closed_by_server(socket) for socket in sockets]
        assert all(closed), closed
        assert all(socket.ended for socket in sockets), "no Engine.IO CLOSE first"
        assert await held_settles(node, baseline) <= baseline
