"""The ways users run ssoio: ``ssoio serve`` as a process, and the embedding example."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from examples.embedded_app import ORDERS, create_app

from .asgi_server import serve_asgi
from .provider import NodeProvider
from .ssoio_server import EXAMPLE, Client, example_settings

pytestmark = pytest.mark.interop


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_ready(url: str, path: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(100):  # bounded: up to ~10 s for the process to listen
            try:
                if (await http.get(f"{url}{path}")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"{url} did not become ready")


def no_traceback(log: str) -> None:
    assert "Traceback" not in log, log[log.find("Traceback") - 300 :][:3000]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
async def test_ssoio_serve_runs_the_example_config(
    node_idp: NodeProvider, stop: signal.Signals
) -> None:
    port = free_port()
    env = {**os.environ, "SSOIO_ISSUER": node_idp.issuer, "SSOIO_PORT": str(port),
           "PYTHONWARNINGS": "error"}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ssoio.cli", "serve", "--config", str(EXAMPLE),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, "/readyz")
        client = Client(url)
        try:
            token = (await node_idp.user_tokens("bob"))["access_token"]
            assert await client.connect(token)
            answer = await client.call("room:join", {"room": "staff"})
            assert answer == {"ok": True, "room": "staff"}
        finally:
            await client.close()
    finally:
        process.send_signal(stop)
        _, stderr = await asyncio.wait_for(process.communicate(), 15)
    log = stderr.decode()
    assert "ssoio listening on" in log
    assert '"event": "auth.connect.accepted"' in log
    assert token not in log
    no_traceback(log)
    if stop == signal.SIGINT:
        assert process.returncode == 0


async def test_ssoio_demo_stops_cleanly_on_ctrl_c() -> None:
    """Issue: ``ssoio demo`` shuts down cleanly on Ctrl-C (uvicorn raises the SIGINT it
    handled again once it has stopped)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ssoio.cli", "demo", "--port", str(port),
        env={**os.environ, "PYTHONWARNINGS": "error"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await wait_ready(f"http://127.0.0.1:{port}", "/readyz")  # (its keys are loaded)
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 15)
    assert b"Ctrl-C stops it" in stdout
    log = stderr.decode()
    no_traceback(log)
    # it listens before it starts: its own provider's keys load at the first try
    assert "idp.fetch.failed" not in log, log
    assert '"event": "key.fetch", "issuer": "primary", "keys": 1, "result": "ok"' in log, log
    assert process.returncode == 0


async def test_ssoio_demo_on_a_port_in_use_says_so() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ssoio.cli", "demo", "--port", str(port),
            env={**os.environ, "PYTHONWARNINGS": "error"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 15)
    log = stderr.decode()
    assert f"--port: cannot listen on 127.0.0.1:{port}: Address already in use" in log, log
    no_traceback(log)
    assert process.returncode == 2


async def test_embedded_example(node_idp: NodeProvider) -> None:
    app, _sso = create_app(example_settings(node_idp))
    async with serve_asgi(app, lifespan="on", ws="websockets-sansio") as url:
        bob, erin = Client(url), Client(url)
        try:
            assert await bob.connect((await node_idp.user_tokens("bob"))["access_token"])
            assert await erin.connect((await node_idp.user_tokens("erin"))["access_token"])
            erin.sio.on("orders:changed", erin._recorder("orders:changed"))
            update = {"order": "A-1", "status": "shipped"}
            assert await bob.call("orders:update", update) == {"ok": True, "order": "A-1"}
            assert await erin.wait_for("orders:changed") == [{**update, "by": "bob"}]
            denied = await erin.call("orders:update", {"order": "A-1", "status": "lost"})
            assert denied["error"]["code"] == "forbidden"
            bad = await bob.call("orders:update", {"order": "A-1", "status": "x" * 21})
            assert bad["error"]["code"] == "invalid_payload"
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{url}/orders")).json() == {"A-1": "shipped"}
        finally:
            await bob.close()
            await erin.close()
            ORDERS.clear()


async def test_dev_idp_rotation_command() -> None:
    from ssoio.demo.app import build_demo, load_demo_settings
    from tests.support.cli import run_cli

    from .web_login import free_port

    root = Path(__file__).resolve().parents[2]
    port = free_port()
    settings = load_demo_settings(root / "config" / "ssoio.example.toml", "127.0.0.1", port)
    demo = build_demo(settings, root / "config" / "dev-users.toml")
    async with serve_asgi(demo.app, port=port, lifespan="on") as url:
        before = list(demo.idp.keys.kids)
        result = await run_cli("dev-idp", "rotate-keys", "--url", url)
        assert result.status == 0, result.stderr
        kid = json.loads(result.stdout)["kid"]
        assert kid not in before
        async with httpx.AsyncClient() as http:
            jwks = (await http.get(f"{url}/dev-idp/jwks")).json()
            forged = await http.post(f"{url}/dev-idp/admin/rotate-keys",
                                     headers={"Origin": "https://evil.example"})  # fmt: skip
        assert kid in [key["kid"] for key in jwks["keys"]]
        assert forged.status_code == 403
