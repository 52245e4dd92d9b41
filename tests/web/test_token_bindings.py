"""Handed-off tokens bound to their browser session in the memory store: found while the
token lives, forgotten after, and never more than a few per session kept."""

from __future__ import annotations

from ssoio.web.sessions import MemorySessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_binding_lives_as_long_as_its_token() -> None:
    clock = Clock()
    store = MemorySessionStore(clock, max_sessions=10)
    await store.bind_token(b"fp-1", "session-a", until=1060)
    assert await store.token_session(b"fp-1") == "session-a"
    assert await store.token_session(b"fp-2") is None
    clock.now = 1060
    assert await store.token_session(b"fp-1") is None


async def test_bindings_are_bounded_expired_first_then_oldest() -> None:
    clock = Clock()
    store = MemorySessionStore(clock, max_sessions=10)
    for index in range(40):  # the bound: 4 per session
        await store.bind_token(f"old-{index}".encode(), "s", until=1010)
    clock.now = 1020  # all expired: swept on the next bind
    await store.bind_token(b"new", "s", until=2000)
    assert len(store._tokens) == 1
    for index in range(100):
        await store.bind_token(f"live-{index}".encode(), "s", until=2000)
    assert len(store._tokens) <= 40
    assert await store.token_session(b"live-99") == "s"
