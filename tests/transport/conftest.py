"""The node the conformance suites run against: one per module and transport path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import httpx
import pytest

from tests.security.harness import Node, running_node
from tests.support.forge import SigningKey
from tests.support.transport_path import transport_path
from tests.transport.wire import (
    WAIT_S,
    Peer,
    conformance_settings,
    install_echo_handlers,
    wait_until,
)

# The transport path the conformance cases run on: the suite's (SSOIO_TRANSPORT,
# tests/support/transport_path.py). ``make test`` runs them on "ssoio" (ssoio's classes)
# and again on "stock" (``server.transport = "stock"``: the dependencies' own classes).
TRANSPORT_PATHS: Final = (transport_path(),)


@pytest.fixture(scope="module", params=TRANSPORT_PATHS)
async def node(request: pytest.FixtureRequest, rsa_key: SigningKey) -> AsyncIterator[Node]:
    """ssoio under uvicorn on 127.0.0.1, configured as ``ssoio serve`` runs it, shaped as
    the suites expect their server (``tests.transport.wire``)."""
    assert request.param in TRANSPORT_PATHS
    async with running_node(
        conformance_settings(), key=rsa_key, sentinel=False, configure=install_echo_handlers
    ) as running:
        yield running


@pytest.fixture
async def peer(node: Node) -> AsyncIterator[Peer]:
    """A case's clients. Before: nothing of the last case is left on the node. After: no
    5xx, no WebSocket closed with 1011, no stack trace, no token in any answer or log."""
    await _reset(node)
    async with httpx.AsyncClient(timeout=WAIT_S) as http:
        peer = Peer(node, http)
        try:
            yield peer
        finally:
            await peer.close()
    node.assert_clean()


async def _reset(node: Node) -> None:
    """Close every Engine.IO session (a case may leave one open on purpose) and forget the
    last case's records. Orphans would hold ``max_unauthenticated_per_ip`` slots: the fake
    clock never lets ``unauthenticated_timeout_s`` run out by itself."""
    for eio_sid in list(node.server.sio.eio.sockets):
        await node.server.sio.close_session(eio_sid)
    gateway = node.server.gateway
    # disconnect handlers run as tasks
    await wait_until(lambda: not len(gateway.connections) and not gateway.unauthenticated_sessions)
    node.logs.records.clear()
    node.recorder.statuses.clear()
    node.recorder.bodies.clear()
    node.recorder.closes.clear()
    node.requests_at_start = node.idp.total_requests
