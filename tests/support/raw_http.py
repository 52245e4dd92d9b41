"""A raw TCP client for hostile HTTP: any bytes, at any pace, and everything the server
answers, kept even when the server resets the connection (``asyncio.StreamReader``
raises the reset before handing over the answer it holds)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["RawHttp", "rss_kib", "status_of"]


class RawHttp(asyncio.Protocol):
    """One TCP connection: ``send`` bytes (respecting the socket's flow control), read
    what came back in ``received``; ``closed`` is set when the server ends it."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.closed = asyncio.Event()
        self.error: Exception | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self.transport: asyncio.Transport | None = None

    @classmethod
    async def open(cls, url: str) -> RawHttp:
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, parts.hostname or "", parts.port or 80)
        return protocol

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = exc
        self.closed.set()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # the client
    async def send(self, chunks: Iterable[bytes], *, pause_s: float = 0.0) -> int:
        """Write ``chunks`` (waiting ``pause_s`` between them) until done, the server
        answered (as HTTP clients do, RFC 9112 §9.5) or closed; the bytes written."""
        assert self.transport is not None
        sent, answered = 0, len(self.received)
        for chunk in chunks:
            await self._writable.wait()
            if len(self.received) > answered or self.closed.is_set():
                break
            self.transport.write(chunk)
            sent += len(chunk)
            if pause_s:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.closed.wait(), pause_s)
            else:
                await asyncio.sleep(0)  # let the loop read what the server answers
        return sent

    async def wait_closed(self, timeout_s: float) -> bool:
        """True when the server closed the connection within ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), timeout_s)
        return self.closed.is_set()

    async def wait_answer(self, timeout_s: float) -> bytes:
        """What the server sent once it sent a whole head (or closed), bounded in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while b"\r\n\r\n" not in self.received and not self.closed.is_set():
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.01)
        return bytes(self.received)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def status_of(answer: bytes) -> int | None:
    """The status code of an HTTP/1.1 answer (None: no answer)."""
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else None


def rss_kib(pid: int | str = "self") -> int:
    """Resident memory of a process (Linux /proc), in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc status")
