"""``ssoio serve`` as a child process, for tests that watch what the process itself does
(its log, its memory): the example configuration, an issuer nothing answers for (keys
never load; Engine.IO and the handshake work without them), a free port on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.interop.processes import drain, terminate
from tests.security.harness import EXAMPLE

__all__ = ["ServedNode", "free_port", "served_node"]

READY_BOUND_S = 15.0
STOP_BOUND_S = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServedNode:
    url: str
    process: asyncio.subprocess.Process
    stderr: bytearray = field(default_factory=bytearray)

    def status_kib(self, name: str) -> int:
        """A memory figure of the process from /proc (``VmRSS``, ``VmHWM``: peak), KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
        raise KeyError(name)


@asynccontextmanager
async def served_node(config_text: str | None = None, tmp: Path | None = None
                      ) -> AsyncIterator[ServedNode]:  # fmt: skip
    """A running ``ssoio serve``; stopped with SIGTERM on exit, its stderr kept in full."""
    config = EXAMPLE
    if config_text is not None:
        assert tmp is not None
        config = tmp / "ssoio.toml"
        config.write_text(config_text)
    port = free_port()
    env = {**os.environ, "SSOIO_PORT": str(port), "PYTHONWARNINGS": "error",
           "SSOIO_ISSUER": "https://127.0.0.1:9/realms/none"}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ssoio.cli", "serve", "--config", str(config),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    node = ServedNode(f"http://127.0.0.1:{port}", process)
    reader = asyncio.create_task(drain(process.stderr, node.stderr, keep=None))
    try:
        await _wait_live(node.url)
        yield node
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)  # a graceful stop: its last lines logged
        try:
            await asyncio.wait_for(process.wait(), STOP_BOUND_S)
        finally:
            await terminate(process)
            await asyncio.wait_for(reader, STOP_BOUND_S)


async def _wait_live(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(int(READY_BOUND_S / 0.1)):  # bounded
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail("ssoio serve did not start")
