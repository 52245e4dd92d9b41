"""The JS socket.io-client harness itself, proven against a bare python-socketio server.

The ssoio interop tests trust run_js_client's observations; these tests show that refusals,
acks, events, server disconnects and the headers a node client sends come through faithfully.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
import socketio

from .asgi_server import serve_asgi
from .js_client import JsClientError, events, first, run_js_client

pytestmark = pytest.mark.interop

TRANSPORTS = [pytest.param(["websocket"], id="websocket"), pytest.param(["polling"], id="polling")]
ORIGIN = "http://app.example.test"
STALL_LIMIT_S = 5.0


@dataclass
class BareServer:
    """A python-socketio server with just enough behaviour to exercise every harness op."""

    url: str
    connects: list[dict[str, Any]] = field(default_factory=list)


def _build_sio(connects: list[dict[str, Any]], release: asyncio.Event) -> socketio.AsyncServer:
    # Any Origin is accepted: the tests send foreign ones on purpose.
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        connects.append(
            {
                "origin": environ.get("HTTP_ORIGIN"),
                "authorization": environ.get("HTTP_AUTHORIZATION"),
            }
        )
        if not (isinstance(auth, dict) and auth.get("token")):
            raise socketio.exceptions.ConnectionRefusedError(
                "unauthorized", {"code": "token_missing", "message": "no token"}
            )

    @sio.event  # type: ignore[untyped-decorator]
    async def echo(sid: str, data: Any) -> dict[str, Any]:
        return {"ok": True, "echo": data}

    @sio.event  # type: ignore[untyped-decorator]
    async def shout(sid: str, data: Any) -> None:
        await sio.emit("heard", data, to=sid)

    @sio.event  # type: ignore[untyped-decorator]
    async def stall(sid: str, data: Any = None) -> None:
        # python-socketio acks every event that asked for one, even when the handler returns
        # None: only a handler that does not return leaves an ack unanswered.
        await asyncio.wait_for(release.wait(), STALL_LIMIT_S)

    @sio.event  # type: ignore[untyped-decorator]
    async def bye(sid: str, data: Any = None) -> None:
        await sio.disconnect(sid)

    return sio


@pytest_asyncio.fixture(loop_scope="session")
async def bare_server() -> AsyncIterator[BareServer]:
    """A fresh bare server per test, so the recorded connects belong to that test only."""
    connects: list[dict[str, Any]] = []
    release = asyncio.Event()
    app = socketio.ASGIApp(_build_sio(connects, release))
    async with serve_asgi(app) as url:
        try:
            yield BareServer(url=url, connects=connects)
        finally:
            release.set()


def _script(server: BareServer, steps: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    return {"url": server.url, "options": options, "steps": steps, "record": ["heard"]}


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_refused_connect_reports_connect_error(
    bare_server: BareServer, transports: list[str]
) -> None:
    script = _script(bare_server, [{"op": "connect"}], transports=transports)

    observations = await run_js_client(script)

    error = first(observations, "connect_error")
    assert error is not None, observations
    assert error["message"] == "unauthorized"
    assert error["data"] == {"code": "token_missing", "message": "no token"}
    assert first(observations, "connect") is None


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_connect_ack_event_and_server_disconnect(
    bare_server: BareServer, transports: list[str]
) -> None:
    steps: list[dict[str, Any]] = [
        {"op": "connect"},
        {"op": "emit", "event": "echo", "args": [{"n": 1}], "ack": True},
        {"op": "emit", "event": "shout", "args": ["hello"], "ack": False},
        {"op": "wait", "event": "heard", "timeout_ms": 3000},
        {"op": "emit", "event": "bye", "args": [], "ack": False},
        {"op": "wait_disconnect", "timeout_ms": 3000},
    ]
    script = _script(bare_server, steps, transports=transports, auth={"token": "t"})

    observations = await run_js_client(script)

    connect = first(observations, "connect")
    assert connect is not None, observations
    assert isinstance(connect["id"], str)
    assert first(observations, "ack") == {
        "type": "ack",
        "step": 1,
        "event": "echo",
        "args": [{"ok": True, "echo": {"n": 1}}],
    }
    assert events(observations, "heard") == [["hello"]]
    assert first(observations, "disconnect") == {
        "type": "disconnect",
        "reason": "io server disconnect",
    }
    assert first(observations, "wait_timeout") is None, observations


async def test_unanswered_wait_and_ack_are_bounded(bare_server: BareServer) -> None:
    steps: list[dict[str, Any]] = [
        {"op": "connect"},
        {"op": "emit", "event": "stall", "args": [], "ack": True, "ack_timeout_ms": 300},
        {"op": "wait", "event": "never", "timeout_ms": 200},
        {"op": "disconnect"},
    ]
    script = _script(bare_server, steps, auth={"token": "t"})

    observations = await run_js_client(script)

    assert first(observations, "ack_timeout") == {"type": "ack_timeout", "step": 1}
    assert first(observations, "wait_timeout") == {"type": "wait_timeout", "step": 2}
    assert first(observations, "disconnect") == {
        "type": "disconnect",
        "reason": "io client disconnect",
    }


@pytest.mark.parametrize("transports", TRANSPORTS)
@pytest.mark.parametrize("via", ["extraHeaders", "origin"])
async def test_origin_header_reaches_server(
    bare_server: BareServer, transports: list[str], via: str
) -> None:
    options: dict[str, Any] = {"transports": transports, "auth": {"token": "t"}}
    if via == "origin":
        options["origin"] = ORIGIN
    else:
        options["extraHeaders"] = {"Origin": ORIGIN}
    script = _script(bare_server, [{"op": "connect"}, {"op": "disconnect"}], **options)

    observations = await run_js_client(script)

    assert first(observations, "connect") is not None, observations
    assert [seen["origin"] for seen in bare_server.connects] == [ORIGIN]


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_authorization_header_reaches_server(
    bare_server: BareServer, transports: list[str]
) -> None:
    script = _script(
        bare_server,
        [{"op": "connect"}],
        transports=transports,
        extraHeaders={"Authorization": "Bearer abc.def.ghi"},
    )

    observations = await run_js_client(script)

    # No `auth` token, so the bare server refuses, but only after it saw the header.
    assert first(observations, "connect_error") is not None, observations
    assert [seen["authorization"] for seen in bare_server.connects] == ["Bearer abc.def.ghi"]


async def test_harness_errors_raise_with_stderr(bare_server: BareServer) -> None:
    script = _script(bare_server, [{"op": "no-such-op"}])

    with pytest.raises(JsClientError, match=r"exited with 1(.|\n)*unknown op"):
        await run_js_client(script)


async def test_global_timeout_is_a_harness_error(bare_server: BareServer) -> None:
    script = {**_script(bare_server, [{"op": "sleep", "ms": 5000}]), "timeout_ms": 300}

    with pytest.raises(JsClientError, match=r"exited with 2(.|\n)*global timeout of 300 ms"):
        await run_js_client(script)
