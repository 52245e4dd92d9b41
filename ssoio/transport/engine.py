"""python-engineio's per-session machinery without its weight: same protocol, same states.

An idle WebSocket session of python-engineio 4.x holds two ``asyncio.Queue`` (its own and
uvicorn's, ~2.5 KiB each: three deques and an ``Event`` with a fourth), a writer task
parked in ``wait_for(queue.get())`` (which wraps the get in a second task), a reader task
parked the same way and a ping task asleep for ``ping_interval``; every packet in or out
creates a task for ``wait_for``. With thousands of connections that is most of a node's
memory and a good part of its CPU per connect and per event (``benchmarks/realtime.py``).

``EngineSocket`` keeps python-engineio's session states and packets and changes how it
waits: a WebSocket's reads and writes without a timeout each (``EngineServer``'s sweep
closes the sessions whose pings go unanswered, as python-engineio's monitor does, in one
pass a second instead of a task per session), long-polling with ``asyncio.timeout`` (no
task per wait), the ping as a timer handle (cancelled when the session closes, instead of
a task left asleep), and the last received message dropped once handled (it was kept
until the next one: for an idle session, the CONNECT packet with its access token).
Without read timeouts, every end of a session must end its transport itself: ``close``
does, whoever ends the session (python-engineio relied on its reader's timeout after a
client's CLOSE, which left the WebSocket open here).
Piece ``engineio.socket`` of ``ssoio.transport.gates`` (python-engineio 4.15, installed
through python-socketio 5.18's ``_engineio_server_class``); the upstream defects it works
around: docs/upstream/python-engineio-last-packet-kept.md,
python-engineio-ping-timeout-close-dropped.md,
python-engineio-client-close-websocket-open.md, python-engineio-protocol-conformance.md.
Its queues are ``ssoio.transport.queues``' (the parts of ``asyncio.Queue`` and
``asyncio.Event`` that python-engineio and uvicorn use).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import engineio
from engineio import async_socket, exceptions, packet
from engineio.async_drivers import asgi

from ssoio.transport.environ import translate_request
from ssoio.transport.queues import PacketQueue

__all__ = [
    "FIRST_MESSAGE",
    "FRAMES",
    "AddressedEngineServer",
    "EngineServer",
    "EngineSocket",
]

# ASGI extension (scope["extensions"], and a key of "websocket.accept") of ssoio's uvicorn
# protocol (ssoio.transport.websocket): a text message written with the handshake's answer, in one
# write. A session's OPEN packet goes out that way: one write per connect less (~20 µs
# of CPU each on loopback TCP).
FIRST_MESSAGE = "ssoio.first_message"
# ASGI extension of the same protocol: a WebSocket Denial Response ("websocket.http.response")
# completes the handshake there. uvicorn 0.54's own websockets-sansio protocol answers it
# but then logs "ASGI callable returned without completing handshake" at ERROR, one line
# per refused handshake: the guard answers with a denial only where this is offered.
DENIAL_COMPLETES = "ssoio.denial_completes"
# ASGI extension of the same protocol: {"write": write_frame, "frame": text_frame}. A
# message for an open WebSocket with nothing queued before it is written at once as a
# whole frame, and a room event's frame is built once for all its recipients: the
# writer task's wake-up and the ASGI send chain (four coroutines) cost a recipient most
# of its delivery (benchmarks/fanout.py).
FRAMES = "ssoio.frames"


class EngineSocket(async_socket.AsyncSocket):  # type: ignore[misc]
    """A python-engineio session that waits without tasks (see the module docstring)."""

    last_ping: float | None
    connected: bool
    closing: bool
    closed: bool
    _ping_timer: asyncio.TimerHandle | None = None
    # a WebSocket session's request task (its reader) and writer task, while it runs
    _reader: asyncio.Task[Any] | None = None
    _writer: asyncio.Future[None] | None = None
    _discarded = False  # discard(): the transport ends without another write
    _frames: dict[str, Any] | None = None  # the WebSocket's FRAMES, while its writer runs
    _writing = False  # the writer holds packets taken from the queue

    async def send(self, pkt: Any) -> None:
        """python-engineio's ``send``; a message written at once where it can be
        (``write_now``)."""
        if not self.write_now(pkt):
            await super().send(pkt)

    def write_now(self, pkt: Any) -> bool:
        """Write message ``pkt`` at once, as a whole frame (``FRAMES``), if nothing is
        queued or being written before it and the session is open; False: it must be
        queued (``send``)."""
        frames = self._frames
        if (
            frames is None
            or self._writing
            or not self.queue.empty()
            or self.closing
            or self.closed
            or pkt.packet_type != packet.MESSAGE
            or self.ping_overdue(time.time())  # (send ends the session: upstream's check)
        ):
            return False
        frame = self.server.frame_of(pkt, frames["frame"])
        return frame is not None and bool(frames["write"](frame))

    async def poll(self) -> list[Any]:
        """The packets waiting for a long-polling client (at least one, or the session
        ended); the request ends with QueueEmpty after ping_interval + ping_timeout."""
        if self.queue.waiting():
            # Engine.IO v4 "Transports": one poll at a time; a second one closes the
            # session (the pending poll gets CLOSE, this one 400), as the reference server
            # does; python-engineio let both wait, the first getting the next packet
            await self.close(wait=False, reason=self.server.reason.TRANSPORT_ERROR)
            raise exceptions.EngineIOError("duplicate poll")
        try:
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                first = await self.queue.get()
        except (TimeoutError, asyncio.CancelledError):
            # python-engineio's own behaviour: the transport ends, the task goes on
            raise exceptions.QueueEmpty() from None
        # The session ended (None queued) without a CLOSE for the client (it sent one, or
        # its transport failed): the pending poll ends with a NOOP, as the Engine.IO
        # reference server's polling transport does on close; python-engineio would
        # answer an empty body, which is no Engine.IO payload.
        return self._with_rest(first) or [packet.Packet(packet.NOOP)]

    def _with_rest(self, first: Any) -> list[Any]:
        """``first`` and the packets queued behind it (none when the session ended)."""
        self.queue.task_done()
        if first is None:
            return []
        packets = [first]
        while not self.queue.empty():
            pkt = self.queue.get_nowait()
            self.queue.task_done()
            if pkt is None:
                self.queue.put_nowait(None)
                break
            packets.append(pkt)
        return packets

    def schedule_ping(self) -> None:
        # Engine.IO v4 §"Heartbeat": the server pings every ping_interval once answered.
        if self.last_ping:
            self.last_ping = None
            loop = asyncio.get_running_loop()
            self._ping_timer = loop.call_later(self.server.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.queue.put_nowait(packet.Packet(packet.PING))

    async def check_ping_timeout(self) -> bool:
        """python-engineio's check (it runs before every send, and in EngineServer.sweep):
        False once the ping has gone unanswered for ping_timeout, the session ending."""
        if self.closed:
            raise exceptions.SocketIsClosedError()
        if self.ping_overdue(time.time()):
            await self._expire()
            return False
        return True

    def ping_overdue(self, now: float) -> bool:
        """The last ping has gone unanswered for longer than ping_timeout."""
        sent = self.last_ping
        return sent is not None and sent > 0 and now - sent > self.server.ping_timeout

    async def _expire(self) -> None:
        """Engine.IO v4 "Heartbeat": the client is gone. The session ends (disconnect
        handlers run), then its transport (``close``). python-engineio's
        ``check_ping_timeout`` sends its CLOSE through ``send``, which drops it for the
        very reason the session ends."""
        await self.close(wait=False, reason=self.server.reason.PING_TIMEOUT)

    async def close(
        self, wait: bool = True, abort: bool = False, reason: object = None
    ) -> None:  # fmt: skip
        """python-engineio's ``close``, which also ends the transport, whoever ends the
        session: CLOSE for the client (unless ``abort``: the client sent CLOSE, or its
        transport failed), then the end of the queue. The end of the queue ends a
        WebSocket's writer, which closes the WebSocket, which ends its reader; it ends a
        pending long-poll (``poll``). python-engineio left a WebSocket to its reader's
        timeout after a client's CLOSE (there is none here: the socket stayed open)."""
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        if self.closed or self.closing:
            return
        self.closing = True
        await self.server._trigger_event(
            "disconnect", self.sid, reason or self.server.reason.SERVER_DISCONNECT,
            run_async=False,
        )  # fmt: skip
        self.closed = True
        if not abort:
            self.queue.put_nowait(packet.Packet(packet.CLOSE))
        self.queue.put_nowait(None)
        if wait:
            await self.queue.join()

    def discard(self) -> int:
        """Drop what is queued for the client and end its transport without writing any
        more: a client that stopped reading (the backlog limit) would block a graceful
        close for good (the writer waits for the socket to drain). The WebSocket's writer
        and reader are cancelled, the request ends and uvicorn closes the connection.
        The number of packets dropped."""
        dropped = 0
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()
            dropped += 1
        self.queue.put_nowait(None)  # a long-poll still pending ends too
        self._discarded = True
        for task in (self._writer, self._reader):
            # (the reader itself, handling a packet, ends after it: _read)
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        return dropped

    async def _upgrade_websocket(self, environ: dict[str, Any]) -> Any:
        if self.upgraded:
            raise OSError("Socket has been upgraded already")  # python-engineio's refusal
        first = None
        if not self.connected and FIRST_MESSAGE in environ["asgi.scope"].get("extensions", {}):
            first = self._take_open()
        return await _WebSocket(self._websocket_handler, first)(environ)

    def _take_open(self) -> str | None:
        """The session's OPEN packet, still queued: a new WebSocket session sends it first."""
        pkt = self.queue.peek()
        if pkt is None or pkt.packet_type != packet.OPEN:
            return None
        self.queue.get_nowait()
        self.queue.task_done()
        encoded: str = pkt.encode()  # JSON text: an OPEN packet is never binary
        return encoded

    async def _websocket_handler(self, ws: Any) -> None:
        """Engine.IO over a WebSocket: python-engineio's handler, waiting without tasks."""
        if self.connected:
            if not await self._upgrade(ws):
                return
        else:
            self.connected = True
            self.upgraded = True
        if self.closed:
            return  # ended during the upgrade: the request ends, uvicorn closes the socket
        self._reader = asyncio.current_task()
        self._writer = writer = asyncio.ensure_future(self._write(ws))
        self._frames = ws.frames
        try:
            await self._read(ws)
        finally:
            self._reader = self._writer = self._frames = None
        if not self.closed:
            self.queue.put_nowait(None)  # unblock the writer
        await writer
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _read(self, ws: Any) -> None:
        """Hand the client's packets to the session until its WebSocket closes."""
        while True:
            try:
                pkt = await self._next_packet(ws)  # no timeout: EngineServer.sweep
            except asyncio.CancelledError:
                if self._discarded:  # discard()'s, not the server's shutdown
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]
                break  # python-engineio's: a cancelled read ends the transport
            except Exception:
                break  # python-engineio's: a failed read ends the transport
            if pkt is None:
                break
            try:
                await self.receive(pkt)
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                break
            except Exception as exc:  # one line, no stack trace: it may quote client input
                self.server.logger.error("engineio.receive.failed kind=%s", type(exc).__name__)
            del pkt  # an idle session must not keep its last message (a token, often)
            if self._discarded:
                break

    async def _next_packet(self, ws: Any) -> Any:
        """The next packet from the client; None when it closed."""
        data = await ws.wait()
        if data is None:
            return None
        if len(data) > self.server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return packet.Packet(encoded_packet=data)

    async def _upgrade(self, ws: Any) -> bool:
        """Engine.IO v4 §"Upgrade": ping probe, pong probe, upgrade; False if it failed."""
        self.upgrading = True  # hold packet sends during the upgrade
        try:
            # bounded: the session's sweep does not watch this second transport
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                probe = await self._next_packet(ws)
                if probe is None or probe.packet_type != packet.PING or probe.data != "probe":
                    return False
                await ws.send(packet.Packet(packet.PONG, data="probe").encode())
                if self.queue.waiting():  # end the pending poll; queued with none pending,
                    # it went out over the new WebSocket after the upgrade (a stray NOOP:
                    # polls that come during the upgrade are answered NOOP anyway)
                    await self.queue.put(packet.Packet(packet.NOOP))
                upgrade = await self._next_packet(ws)
            if upgrade is None or upgrade.packet_type != packet.UPGRADE:
                return False
            self.upgraded = True
            return True
        except (OSError, TimeoutError, ValueError):
            return False
        finally:
            self.upgrading = False

    async def _write(self, ws: Any) -> None:
        while True:
            try:
                # no timeout: a session ends with None queued (EngineServer.sweep closes
                # the silent ones)
                packets = self._with_rest(await self.queue.get())
            except asyncio.CancelledError:
                break  # as python-engineio's: the transport ends
            if not packets:
                break
            self._writing = True  # (until they are written, nothing goes out before them)
            try:
                for pkt in packets:
                    await ws.send(pkt.encode())
            except (Exception, asyncio.CancelledError):
                break
            finally:
                self._writing = False
        if not self._discarded:  # (a discarded socket's close would wait for the client)
            await ws.close()


class _WebSocket(asgi.WebSocket):  # type: ignore[misc]
    """python-engineio's ASGI WebSocket, accepting with a first message (FIRST_MESSAGE)."""

    def __init__(self, handler: Any, first: str | None) -> None:
        super().__init__(handler, None)
        self.first = first
        self.frames: dict[str, Any] | None = None

    async def __call__(self, environ: dict[str, Any]) -> str:
        self.asgi_receive = environ["asgi.receive"]
        self.asgi_send = environ["asgi.send"]
        self.frames = environ["asgi.scope"].get("extensions", {}).get(FRAMES)
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if self.first is not None:
            accept[FIRST_MESSAGE] = self.first
        await self.asgi_send(accept)
        await self.handler(self)
        return ""  # python-engineio's: nothing more to answer


class AddressedEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's server whose requests are translated by ssoio
    (``ssoio.transport.environ``: the real client address, no class per request). Piece
    ``engineio.environ``: replaces python-engineio 4.15's ASGI ``translate_request``
    (docs/upstream/python-engineio-remote-addr.md)."""

    _async: dict[str, Any]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # python-engineio's driver table is shared by every server in the process: copy it
        self._async = {**self._async, "translate_request": translate_request}


class EngineServer(AddressedEngineServer):
    """python-engineio's server whose sessions are ``EngineSocket`` with a ``PacketQueue``
    (piece ``engineio.socket``), its requests translated by ssoio."""

    _framed: tuple[Any, bytes | None] = (None, None)  # the last packet framed, its frame

    def create_queue(self, *args: Any, **kwargs: Any) -> PacketQueue[Any]:
        return PacketQueue()

    def frame_of(self, pkt: Any, frame: Any) -> bytes | None:
        """``pkt``'s WebSocket frame (None: a binary packet), built once for a packet sent
        to many sessions in turn (a room event: ``ssoio.transport.manager.FanOut``)."""
        if self._framed[0] is not pkt:
            encoded = pkt.encode()
            self._framed = (pkt, frame(encoded) if isinstance(encoded, str) else None)
        return self._framed[1]

    async def _service_task(self) -> None:
        """python-engineio's watch over dead clients, as a sweep: every second (more often
        for a short ping_timeout), each session whose ping has gone unanswered for
        ping_timeout is closed (Engine.IO v4 §"Heartbeat"), and closed sessions are
        dropped. python-engineio visits one session at a time, ping_timeout / sessions
        apart, with a ``wait_for`` (a task) in between: 500 a second with 10,000 sessions.
        This sweep is also why a WebSocket session's reads and writes need no timeout."""
        self.service_task_event = self.create_event()
        interval = min(1.0, self.ping_timeout / 4)
        while not self.service_task_event.is_set():
            try:
                await self.sweep(time.time())
            except Exception as exc:  # the watch must go on; one line, no client data
                self.logger.error("engineio.sweep.failed %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self.service_task_event.wait()

    async def sweep(self, now: float) -> None:
        """Close the sessions whose ping went unanswered; drop the closed ones."""
        for sid, socket in list(self.sockets.items()):
            if socket.closed:
                self.sockets.pop(sid, None)
            elif not socket.closing and socket.ping_overdue(now):
                await socket.check_ping_timeout()

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            # python-engineio constructs its own socket class; the session's first event
            # comes before it is used for anything, so it becomes an EngineSocket here.
            socket = self.sockets.get(args[0])
            if type(socket) is async_socket.AsyncSocket:
                socket.__class__ = EngineSocket
                self._advertise_interval(socket)
        return await super()._trigger_event(event, *args, **kwargs)

    def _advertise_interval(self, socket: EngineSocket) -> None:
        """python-engineio 4.x advertises ``int(ping_interval) * 1000`` in the queued OPEN
        packet: 0 for any interval under one second, and a truncated one otherwise
        (Engine.IO v4 "Handshake": milliseconds). The interval it runs, in milliseconds."""
        opened = socket.queue.peek()
        if opened is not None and opened.packet_type == packet.OPEN:
            interval = self.ping_interval + self.ping_interval_grace_period
            opened.data["pingInterval"] = round(interval * 1000)
