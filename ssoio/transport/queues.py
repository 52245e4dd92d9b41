"""The parts of ``asyncio.Queue`` and ``asyncio.Event`` that python-engineio and uvicorn use,
in a few hundred bytes each instead of ~2.5 KiB: an idle connection holds one of each
(``ssoio.transport.engine``'s sessions, ``ssoio.transport.websocket``'s protocol)."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

__all__ = ["Flag", "PacketQueue"]

T = TypeVar("T")


class Flag:
    """``asyncio.Event`` as uvicorn uses it (``set``, ``clear``, ``wait``), without a deque."""

    __slots__ = ("_set", "_waiters")

    def __init__(self, *, is_set: bool = False) -> None:
        self._set = is_set
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)


class PacketQueue(Generic[T]):
    """An unbounded FIFO: the part of ``asyncio.Queue`` python-engineio and uvicorn use.

    The same semantics (a woken getter that is cancelled passes its wake-up on, ``join``
    waits for a ``task_done`` per item), in a few hundred bytes instead of ~2.5 KiB."""

    __slots__ = ("_done", "_getters", "_items", "_unfinished")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._getters: list[asyncio.Future[None]] = []
        self._unfinished = 0
        self._done = Flag(is_set=True)

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def waiting(self) -> bool:
        """A getter is waiting (a long-poll is pending)."""
        return bool(self._getters)

    def peek(self) -> T | None:
        """The next item, left in the queue (None when empty)."""
        return self._items[0] if self._items else None

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._unfinished += 1
        self._done.clear()
        self._wake_getter()

    async def put(self, item: T) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    async def get(self) -> T:
        while not self._items:
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if getter in self._getters:
                    self._getters.remove(getter)
                elif self._items:  # woken, then cancelled: the item is someone else's
                    self._wake_getter()
                raise
        return self._items.pop(0)

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            self._done.set()

    async def join(self) -> None:
        await self._done.wait()

    def _wake_getter(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return
