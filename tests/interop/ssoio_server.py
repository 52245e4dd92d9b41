"""Run a real ssoio node (uvicorn on 127.0.0.1) against the node OpenID Provider, and a
python-socketio client that records what it sees."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

from ssoio.app import SsoServer
from ssoio.config import Settings
from ssoio.serving import uvicorn_options
from ssoio.settings import load_settings, validate_raw
from tests.support.transport_path import on_path

from .asgi_server import serve_asgi
from .provider import NodeProvider

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "ssoio.example.toml"


@dataclass
class OffsetClock:
    """Real time (the provider's tokens carry real iat/exp) that a test can move ahead."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def example_settings(provider: NodeProvider, **overrides: Any) -> Settings:
    """``config/ssoio.example.toml`` pointed at the node provider, as a user would do it."""
    env = {"SSOIO_ISSUER": provider.issuer, "SSOIO_AUDIENCE": "ssoio-api"}
    settings = load_settings(EXAMPLE, env=env)
    if not overrides:
        return settings
    raw = settings.model_dump(mode="python")
    for section, values in overrides.items():
        raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
    raw["issuers"][0]["introspection"] = None
    return validate_raw(_plain(raw), {})


def _plain(value: Any) -> Any:
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@asynccontextmanager
async def running_ssoio(settings: Settings, **kwargs: Any) -> AsyncIterator[tuple[str, SsoServer]]:
    """An ssoio node with uvicorn configured as ``ssoio serve`` does; yields (url, server)."""
    # on the suite's transport path (SSOIO_TRANSPORT, tests/support/transport_path.py)
    server = SsoServer(on_path(settings), **kwargs)
    options = {**uvicorn_options(server), "timeout_graceful_shutdown": 1}
    async with serve_asgi(server.asgi_app, **options) as url:
        yield url, server


@dataclass
class Client:
    """A python-socketio client that records events and connect errors."""

    url: str
    sio: socketio.AsyncClient = field(
        default_factory=lambda: socketio.AsyncClient(reconnection=False)
    )
    received: list[tuple[str, Any]] = field(default_factory=list)
    connect_error: Any = None
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        for name in ("chat:message", "announcement", "auth:expiring", "auth:revoked",
                     "room:revoked", "memo"):  # fmt: skip
            self.sio.on(name, self._recorder(name))
        self.sio.on("connect_error", self._on_connect_error)
        self.sio.on("disconnect", self._on_disconnect)

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None) -> None:
            self.received.append((name, data))

        return record

    async def _on_connect_error(self, data: Any = None) -> None:
        self.connect_error = data

    async def _on_disconnect(self, *args: Any) -> None:
        self.disconnected.set()

    async def connect(self, token: str | None = None, *, transport: str = "websocket",
                      headers: dict[str, str] | None = None, auth: Any = None) -> bool:  # fmt: skip
        """True when connected; False (with ``connect_error`` set) when refused."""
        try:
            await self.sio.connect(
                self.url, auth=auth if auth is not None else ({"token": token} if token else None),
                headers=headers or {}, transports=[transport], wait_timeout=10,
            )  # fmt: skip
        except socketio.exceptions.ConnectionError:
            return False
        return True

    async def call(self, event: str, payload: Any = None) -> Any:
        return await self.sio.call(event, payload, timeout=10)

    def got(self, name: str) -> list[Any]:
        return [data for event, data in self.received if event == name]

    async def wait_for(self, name: str, count: int = 1, timeout_s: float = 5) -> list[Any]:
        """Wait (bounded) until ``count`` events named ``name`` arrived."""
        deadline = time.monotonic() + timeout_s
        while len(self.got(name)) < count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # polling a list the event handlers append to
        return self.got(name)

    async def close(self) -> None:
        await self.sio.shutdown()
        # a refused handshake leaves engine.io's aiohttp session open; close it
        http = getattr(self.sio.eio, "http", None)
        if http is not None and not http.closed:
            await http.close()
