"""Run the official JavaScript `socket.io-client` (node, sio_client.mjs) from Python tests.

The tests must see what a real JS client sees (connect_error payloads, acks, server-initiated
disconnects), not what python-socketio's client makes of it. A script goes in on stdin and a
list of observations comes back:

script::

    {"url": "http://127.0.0.1:PORT",
     "options": {...socket.io-client options..., "origin": "http://app.example"},
     "steps": [
        {"op": "connect", "timeout_ms": 10000},
        {"op": "emit", "event": "e", "args": [...], "ack": true, "ack_timeout_ms": 5000},
        {"op": "wait", "event": "e", "timeout_ms": 5000},
        {"op": "wait_disconnect", "timeout_ms": 5000},
        {"op": "sleep", "ms": 100},
        {"op": "disconnect"},
        {"op": "close_transport"},                     # socket.io.engine.close()
        {"op": "set_auth", "auth": {...}},             # the next CONNECT's credential
        {"op": "set_url", "url": "http://..."},        # the next connect goes there
        {"op": "write_file", "path": P, "text": T},    # signal the test
        {"op": "write_pid", "path": P},                # the client's recovery pid, to P
        {"op": "wait_file", "path": P, "timeout_ms": 5000}],  # the test's signal
     "record": ["event", ...],
     "timeout_ms": 20000}

observations (in arrival order, `{"type": "done"}` last)::

    {"type": "connect", "id": SID, "recovered": BOOL}   # socket.recovered (socket.io 4.6+)
    {"type": "connect_error", "message": MSG, "data": DATA-or-null}
    {"type": "ack", "step": I, "event": NAME, "args": [...]}
    {"type": "ack_timeout", "step": I}
    {"type": "ack_error", "step": I, "message": MSG}   # e.g. disconnected while awaiting it
    {"type": "event", "event": NAME, "args": [...]}    # events in `record` or waited for
    {"type": "wait_timeout", "step": I}                # a connect/wait/wait_disconnect ran out
    {"type": "disconnect", "reason": REASON}
    {"type": "done"}

Reconnection is off unless `options.reconnection` is true. `options.origin` is sent as the
`Origin` header on both transports; `options.extraHeaders` (node only) may set it as well.
A `wait` step also consumes an occurrence that arrived before the step started.
"""

from __future__ import annotations

from typing import Any, Final

from .node_scripts import run_json_script
from .provider import INTEROP_DIR

CLIENT_SCRIPT: Final = INTEROP_DIR / "sio_client.mjs"


class JsClientError(RuntimeError):
    """The node client harness failed (not the server under test: refusals are observations)."""


async def run_js_client(script: dict[str, Any], *, timeout_s: float = 30) -> list[dict[str, Any]]:
    """Run one scripted socket.io-client session; returns its observations, `done` last.

    `timeout_s` bounds the whole node process; keep it above the script's own `timeout_ms`
    (20 s by default) so that node reports its timeout itself, with the step it was at.
    """
    return await run_json_script(CLIENT_SCRIPT, script, timeout_s=timeout_s, error=JsClientError)


def first(
    observations: list[dict[str, Any]], type: str, event: str | None = None
) -> dict[str, Any] | None:
    """The first observation of that type (and event name, if given), or None."""
    for observation in observations:
        if observation.get("type") == type and (event is None or observation.get("event") == event):
            return observation
    return None


def events(observations: list[dict[str, Any]], name: str) -> list[list[Any]]:
    """The argument lists of every received `name` event, in arrival order."""
    return [
        list(observation["args"])
        for observation in observations
        if observation.get("type") == "event" and observation.get("event") == name
    ]
