"""The health check itself: ``Node.assert_healthy`` must notice each kind of damage it
promises to notice, or every "nothing else broke" in this directory proves nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.security.harness import Node
from tests.support.raw_client import RawSocket

Damage = Callable[[Node], Awaitable[None]]


async def leak_a_token_in_a_log(live: Node) -> None:
    logging.getLogger("ssoio.test").warning("token=%s", live.token("erin"))


async def log_a_stack_trace(live: Node) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("ssoio.test").exception("handler failed")


ABANDONED: list[RawSocket] = []


async def leave_a_connection_behind(live: Node) -> None:
    socket, _ = await live.client("erin")
    live.sockets.remove(socket)  # not closed by the case's clean-up
    ABANDONED.append(socket)


async def fetch_keys_again(live: Node) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(live.idp.handle)) as http:
        await http.get(live.idp.jwks_uri)


async def answer_a_5xx(live: Node) -> None:
    live.recorder.statuses.append(("/api/v1/emit", 500))


async def stop_the_sentinel(live: Node) -> None:
    assert live.sentinel is not None
    await live.sentinel.close()


DAMAGE: list[tuple[str, Damage, str]] = [
    ("a token in a log line", leak_a_token_in_a_log, "a secret was echoed"),
    ("a stack trace in the log", log_a_stack_trace, "a stack trace was logged"),
    ("a connection left behind", leave_a_connection_behind, "connections left behind"),
    ("an unexpected key fetch", fetch_keys_again, "provider requests"),
    ("a 5xx answer", answer_a_5xx, "5xx answered"),
    ("a sentinel that stopped receiving", stop_the_sentinel, "sentinel"),
]


@pytest.mark.parametrize(("what", "damage", "message"), DAMAGE, ids=[d[0] for d in DAMAGE])
async def test_health_check_notices(live: Node, what: str, damage: Damage, message: str) -> None:
    await damage(live)
    with pytest.raises(AssertionError, match=message):
        await live.assert_healthy(settle_s=0.2)
    for socket in ABANDONED:
        await socket.close()
    await live.begin_case()  # repair, so the module's node is clean for the next case
    await live.assert_healthy()


async def test_health_check_passes_on_an_untouched_node(live: Node) -> None:
    await live.assert_healthy()
