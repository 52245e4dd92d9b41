"""Serve an ASGI app with a real uvicorn on 127.0.0.1 inside the test's event loop.

Interop peers (node socket.io-client, browsers) need a real listening socket, not an in-process
transport; running uvicorn in the same loop keeps the app's state inspectable from the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import uvicorn

START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 10.0
POLL_INTERVAL_S: Final = 0.01


class ServerStartError(RuntimeError):
    """uvicorn did not start listening in time (or stopped while starting)."""


def quiet_config(app: Callable[..., Any], overrides: dict[str, Any]) -> uvicorn.Config:
    """uvicorn settings for tests: an OS-chosen port, quiet logs, and a short graceful shutdown.

    A client that went away can leave an engine.io long-polling request open for ~45 s and a
    graceful shutdown would wait for it, so the grace period is cut to 1 s.
    """
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "log_level": "warning",
        "lifespan": "off",
        "timeout_graceful_shutdown": 1,
    }
    settings.update(overrides)
    return uvicorn.Config(app, **settings)


def bound_port(server: uvicorn.Server) -> int:
    """The port the OS picked for port 0 (uvicorn only knows the one it was asked for)."""
    name = server.servers[0].sockets[0].getsockname()
    assert isinstance(name, tuple)
    port = name[1]
    assert isinstance(port, int)
    return port


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Poll `server.started` (uvicorn offers no event), bounded and aware of an early exit."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while not server.started:
        if task.done():
            raise ServerStartError(f"uvicorn stopped while starting: {task.exception()!r}")
        if loop.time() > deadline:
            raise ServerStartError(f"uvicorn did not start within {START_TIMEOUT_S:.0f} s")
        await asyncio.sleep(POLL_INTERVAL_S)


async def _stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Ask for a graceful exit; force it, then cancel, if that takes longer than the bound."""
    server.should_exit = True
    try:
        await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S)
    except TimeoutError:
        server.force_exit = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def serve_asgi(app: Callable[..., Any], **config: Any) -> AsyncIterator[str]:
    """Run `app` under uvicorn on 127.0.0.1 for the block; yields its base URL (no slash).

    Keyword arguments override the uvicorn.Config settings (e.g. `ws="wsproto"`).
    """
    server = uvicorn.Server(quiet_config(app, config))
    task = asyncio.create_task(server.serve())
    try:
        await _wait_started(server, task)
        yield f"http://127.0.0.1:{bound_port(server)}"
    finally:
        await _stop(server, task)
