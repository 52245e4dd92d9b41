"""Tokens that live less than ``realtime.expiry_warning_s``, on a live node: the client is
warned at once (DESIGN.md: ``auth:expiring {expires_in}`` before the token expires), then
revoked at expiry, by the node's own timer loop (the fake clock moved, no manual tick)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.security.harness import Node, running_node, settings_from
from tests.support.forge import SigningKey
from tests.support.raw_client import CONNECT, DISCONNECT, EVENT

LEEWAY_S = 30  # the example configuration's issuers[0].leeway_s
WAIT_S = 3.0  # the timer loop wakes at least once a second


@pytest.fixture(scope="module")
async def node(rsa_key: SigningKey) -> AsyncIterator[Node]:
    settings = settings_from(realtime={"expiry_warning_s": 60})
    async with running_node(settings, key=rsa_key) as running:
        yield running


@pytest.mark.parametrize("lifetime", [20, 59, 1])
async def test_short_token_is_warned_at_once_then_revoked(node: Node, lifetime: int) -> None:
    await node.begin_case()
    now = node.clock()
    socket = await node.open()
    token = node.token("erin", iat=int(now), exp=int(now) + lifetime)
    answer = await socket.connect({"token": token})
    assert answer is not None
    assert answer.type == CONNECT, answer.raw
    warning = await socket.wait_event("auth:expiring", timeout_s=WAIT_S)  # clock unmoved
    assert warning == {"expires_in": lifetime}
    kinds = [(p.type, p.event) for p in socket.received]
    assert kinds.index((CONNECT, None)) < kinds.index((EVENT, "auth:expiring"))  # after CONNECT
    assert socket.events("auth:revoked") == []
    node.clock.advance(lifetime + LEEWAY_S + 1)  # past exp + leeway
    assert await socket.wait_event("auth:revoked", timeout_s=WAIT_S) == {"code": "token_expired"}
    assert await socket.expect(lambda p: p.type == DISCONNECT, WAIT_S) is not None
    assert len(socket.events("auth:expiring")) == 1
    await node.assert_healthy()
