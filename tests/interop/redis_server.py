"""A real `redis-server` on a free loopback port, for the cluster tests."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from redis import asyncio as aioredis

from .provider import require_tool
from .web_login import free_port

START_TIMEOUT_S = 10.0


@dataclass
class RedisServer:
    port: int
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    async def start(cls, port: int | None = None) -> RedisServer:
        server = cls(port or free_port())
        await server.restart()
        return server

    async def restart(self) -> None:
        """Start (again) on the same port, with no persistence; wait until it answers."""
        binary = require_tool("redis-server")
        self.process = await asyncio.create_subprocess_exec(
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--protected-mode", "yes",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            for _ in range(int(START_TIMEOUT_S / 0.05)):
                with contextlib.suppress(OSError, aioredis.ConnectionError):
                    if await client.ping():
                        return
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
