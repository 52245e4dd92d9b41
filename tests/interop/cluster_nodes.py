"""Several `ssoio serve` processes sharing a real redis-server, against the node provider."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.transport_path import transport_path

from .provider import NodeProvider
from .ssoio_server import EXAMPLE

# An extra relay event whose `secret` field only staff receive: filtering across nodes.
NOTE_EVENT = """
[events."note:send"]
requires = "authenticated"
fields = { room = "room", text = "string", secret = "string" }
room_field = "room"
deliver_as = "note"
visible = { secret = "role:staff" }
"""


def cluster_config(
    path: Path, idp: NodeProvider, redis_url: str, public_url: str,
    changes: dict[str, str] | None = None,
) -> Path:  # fmt: skip
    """The example configuration, pointed at the provider and Redis, for every node
    (``changes``: more text replacements, each of which must apply)."""
    text = EXAMPLE.read_text()
    replacements = {
        "${SSOIO_ISSUER:-http://127.0.0.1:8000/dev-idp}": idp.issuer,
        "${SSOIO_CLIENT_ID:-ssoio-demo}": "ssoio-web",
        'client_secret = "${SSOIO_CLIENT_SECRET:-}"': 'client_secret = "ssoio-web-secret"',
        "${SSOIO_SESSION_SECRET:-}": "cluster-test-session-secret-0123456789",
        "${SSOIO_REDIS_URL:-}": redis_url,
        "${SSOIO_PUBLIC_URL:-http://127.0.0.1:8000}": public_url,
        "connects_per_ip = { rate = 5,": "connects_per_ip = { rate = 999,",
        "burst = 30 }": "burst = 999 }",
        'admin_requires = "scope:ssoio:admin"': 'admin_requires = "scope:ssoio:emit"',
        "request_timeout_s = 0.5": "request_timeout_s = 1.0",
        "heartbeat_s = 5": "heartbeat_s = 1",
        # the suite's transport path (SSOIO_TRANSPORT, tests/support/transport_path.py)
        'transport = "ssoio"': f'transport = "{transport_path()}"',
    }  # fmt: skip
    replacements.update(changes or {})
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text + NOTE_EVENT)
    return path


@dataclass
class Node:
    name: str
    port: int
    log_path: Path
    process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self, config: Path) -> None:
        env = {**os.environ, "SSOIO_NODE_ID": self.name, "PYTHONWARNINGS": "error"}
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ssoio.cli", "serve", "--config", str(config),
                "--port", str(self.port), env=env, stdout=log, stderr=log,
            )  # fmt: skip
        async with httpx.AsyncClient() as http:
            for _ in range(200):  # bounded: ~20 s
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{self.url}/readyz")).status_code == 200:
                        return
                if self.process.returncode is not None:
                    break
                await asyncio.sleep(0.1)
        raise RuntimeError(f"node {self.name} did not become ready:\n{self.log[-3000:]}")

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
