"""What the connection state recovery tests share: the official socket.io-client 4.8
script that loses its transport and comes back (``recovery_script``, ``while_away``), a
publisher that keeps sending while it does (``streaming``), and readings of what the
client saw (``connects``, ``messages``, ``texts``, ``assert_log_order``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from .js_client import run_js_client

__all__ = [
    "GENERAL",
    "RECORDED",
    "RECOVERY",
    "STAFF",
    "assert_log_order",
    "connects",
    "join",
    "messages",
    "recovery_script",
    "streaming",
    "texts",
    "wait_file",
    "while_away",
]

RECOVERY = (
    "socketio.server: connection state recovery needs ssoio's SocketServer (the CONNECT "
    "answer's pid, live events held while missed ones are replayed)"
)
GENERAL, STAFF = "tenant:acme:general", "staff"
RECORDED = ["chat:message", "room:revoked", "auth:revoked", "note"]
STREAM_LIMIT = 100_000


def join(room: str) -> dict[str, Any]:
    return {"op": "emit", "event": "room:join", "args": [{"room": room}], "ack": True}


def recovery_script(
    url: str, auth: dict[str, Any], signals: Path, rooms: tuple[str, ...] = (GENERAL, STAFF),
    before: list[dict[str, Any]] | None = None, reconnect: list[dict[str, Any]] | None = None,
    expect: int = 0, event: str = "chat:message",
) -> dict[str, Any]:  # fmt: skip
    """Connect, join ``rooms``, lose the transport, tell the test (file ``closed``), wait
    for its ``go``, connect again (``reconnect`` steps first), wait for ``expect`` events
    (bounded), then collect for a moment (anything more: a duplicate, a leak)."""
    waits = [{"op": "wait", "event": event, "timeout_ms": 10000}] * expect
    return {
        "url": url,
        "options": {"transports": ["websocket"], "auth": auth},
        "steps": [
            {"op": "connect"},
            *[join(room) for room in rooms],
            *(before or []),
            {"op": "close_transport"},
            {"op": "sleep", "ms": 100},
            {"op": "write_file", "path": str(signals / "closed")},
            {"op": "wait_file", "path": str(signals / "go"), "timeout_ms": 15000},
            *(reconnect or []),
            {"op": "connect"},
            *waits,
            {"op": "sleep", "ms": 800},
        ],
        "record": RECORDED,
        "timeout_ms": 30000,
    }


async def wait_file(path: Path, until: Callable[[], bool] = lambda: False) -> bool:
    """Wait (bounded: 20 s) for a client's signal file, or ``until``; whether it exists."""
    for _ in range(400):
        if path.exists() or until():
            break
        await asyncio.sleep(0.05)
    return path.exists()


async def while_away(
    script: dict[str, Any], signals: Path, act: Callable[[], Awaitable[Any]]
) -> list[dict[str, Any]]:
    """Run the client; when it has lost its transport, ``act``, then let it reconnect."""
    client = asyncio.create_task(run_js_client(script, timeout_s=40))
    closed = await wait_file(signals / "closed", client.done)
    assert closed, "the client did not lose its transport"
    await act()
    (signals / "go").write_text("")
    return await client


@asynccontextmanager
async def streaming(
    send: Callable[[int], Awaitable[Any]], senders: int = 1, pause_s: float = 0
) -> AsyncIterator[None]:
    """Keep calling ``send(number)`` from ``senders`` concurrent loops (each ``pause_s``
    apart) while the block runs, numbers counting up over all of them; on exit every
    send has returned."""
    stop, numbers = asyncio.Event(), itertools.count()

    async def loop() -> None:
        for _ in range(STREAM_LIMIT):  # bounded by the block, and by this
            if stop.is_set():
                return
            await send(next(numbers))
            if pause_s:
                await asyncio.sleep(pause_s)

    tasks = [asyncio.create_task(loop()) for _ in range(senders)]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def connects(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in observations if o["type"] == "connect"]


def messages(observations: list[dict[str, Any]], event: str = "chat:message") -> list[Any]:
    return [o["args"] for o in observations if o["type"] == "event" and o["event"] == event]


def texts(observations: list[dict[str, Any]]) -> list[str]:
    return [str(args[0]["text"]) for args in messages(observations)]


def assert_log_order(observations: list[dict[str, Any]], sent: list[str]) -> None:
    """Every event ``sent``, once, offsets strictly increasing (the log's order on the
    wire: socket.io 4.6+ puts the offset last)."""
    got = messages(observations)
    assert sorted(str(args[0]["text"]) for args in got) == sorted(sent)
    offsets = [tuple(map(int, str(args[1]).split("-"))) for args in got]
    assert all(a < b for a, b in itertools.pairwise(offsets)), "out of the log's order"
