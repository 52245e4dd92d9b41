"""Connection state recovery across a cluster: two ``ssoio serve`` nodes over a real
redis-server, the official ``socket.io-client`` 4.8 (node) and the node OpenID Provider.
Missed events are sent from the OTHER node (the server API); the client recovers on its
own node, on the other one after its node was killed (SIGKILL), with a refreshed token;
with Redis down it still connects, not recovered."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.support.transport_path import ssoio_only

from .cluster_nodes import Node, cluster_config
from .js_client import run_js_client
from .provider import NodeProvider, require_tool
from .recovery_client import (
    GENERAL,
    RECOVERY,
    STAFF,
    assert_log_order,
    connects,
    join,
    messages,
    recovery_script,
    streaming,
    texts,
    wait_file,
    while_away,
)
from .redis_server import RedisServer
from .web_login import free_port

pytestmark = [pytest.mark.interop, ssoio_only(RECOVERY)]

ENABLE = {
    "[recovery]\n# Default false: clients that send no pid are unaffected either way.\n"
    "enabled = false": "[recovery]\nenabled = true",
}


@dataclass
class Cluster:
    idp: NodeProvider
    redis: RedisServer
    nodes: dict[str, Node]
    config: Path

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    require_tool("redis-server")
    workdir = tmp_path_factory.mktemp("recovery-cluster")
    ports = {name: free_port() for name in ("a", "b")}
    public_url = f"http://127.0.0.1:{ports['a']}"
    idp = await NodeProvider.start(redirect_uris=[f"{public_url}/auth/callback"])
    redis = await RedisServer.start()
    config = cluster_config(workdir / "ssoio.toml", idp, redis.url, public_url, ENABLE)
    nodes = {name: Node(name, port, workdir / f"{name}.log") for name, port in ports.items()}
    try:
        await asyncio.gather(*(node.start(config) for node in nodes.values()))
        yield Cluster(idp, redis, nodes, config)
    finally:
        await asyncio.gather(*(node.stop() for node in nodes.values()))
        await redis.stop()
        await idp.stop()
    for node in nodes.values():
        assert "Traceback" not in node.log, node.log[-4000:]


Emit = Callable[[str, str, str], Awaitable[None]]


@asynccontextmanager
async def server_api(cluster: Cluster) -> AsyncIterator[Emit]:
    """``emit(node, room, text)``: a ``chat:message`` through that node's server API
    (``POST /api/v1/emit``, answered 200: logged and on its way)."""
    token = await cluster.idp.client_credentials_token()
    async with httpx.AsyncClient(timeout=10) as http:

        async def emit(node: str, room: str, text: str) -> None:
            body = {"room": room, "event": "chat:message", "data": {"room": room, "text": text}}
            answer = await http.post(f"{cluster[node].url}/api/v1/emit", json=body,
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert answer.status_code == 200, answer.text

        yield emit


async def send_20(cluster: Cluster, node: str, rooms: tuple[str, ...] = (GENERAL, STAFF)) -> None:
    """20 events to ``rooms`` through the server API of ``node``, one after the other."""
    async with server_api(cluster) as emit:
        for number in range(20):
            await emit(node, rooms[number % len(rooms)], f"m{number}")


@asynccontextmanager
async def from_both_nodes(cluster: Cluster, senders: int = 3) -> AsyncIterator[list[str]]:
    """Both nodes publish at once into the same rooms (``senders`` concurrent loops each,
    through their server APIs) while the block runs; yields the texts sent (complete once
    the block is left)."""
    sent: list[str] = []
    async with server_api(cluster) as emit:

        def through(node: str) -> Callable[[int], Awaitable[None]]:
            async def send(number: int) -> None:
                text = f"{node}{number}"
                await emit(node, (GENERAL, STAFF)[number % 2], text)
                sent.append(text)

            return send

        async with streaming(through("a"), senders), streaming(through("b"), senders):
            yield sent


def script_on(cluster: Cluster, node: str, token: str, signals: Path,
              reconnect: list[dict[str, Any]] | None = None, expect: int = 0,
              ) -> dict[str, Any]:  # fmt: skip
    return recovery_script(cluster[node].url, {"token": token}, signals, reconnect=reconnect,
                           expect=expect)  # fmt: skip


async def test_events_sent_from_the_other_node_while_away_arrive_once_in_order(
    cluster: Cluster, tmp_path: Path
) -> None:
    token = (await cluster.idp.user_tokens("alice"))["access_token"]
    observations = await while_away(
        script_on(cluster, "a", token, tmp_path, expect=20),
        tmp_path,
        lambda: send_20(cluster, "b"),
    )
    assert [c["recovered"] for c in connects(observations)] == [False, True]
    assert texts(observations) == [f"m{n}" for n in range(20)]


async def test_events_sent_during_the_reconnect_arrive_once_and_in_order(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Events keep coming through node B while the client reconnects to node A: what it
    missed is replayed after the CONNECT answer, the live ones follow, none twice."""
    token = (await cluster.idp.user_tokens("alice"))["access_token"]
    script = recovery_script(cluster["a"].url, {"token": token}, tmp_path, rooms=(GENERAL,))
    script["steps"][-1] = {"op": "sleep", "ms": 1500}

    async with server_api(cluster) as emit:

        async def send(number: int) -> None:
            await emit("b", GENERAL, str(number))

        async with streaming(send):
            observations = await while_away(script, tmp_path, lambda: asyncio.sleep(0.3))
    assert [c["recovered"] for c in connects(observations)] == [False, True]
    numbers = [int(text) for text in texts(observations)]
    assert len(numbers) > 20
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # no gap, no repeat


async def test_a_refreshed_token_recovers_too(cluster: Cluster, tmp_path: Path) -> None:
    token = (await cluster.idp.user_tokens("alice"))["access_token"]
    fresh = (await cluster.idp.user_tokens("alice"))["access_token"]
    assert fresh != token
    script = script_on(cluster, "a", token, tmp_path, expect=20,
                       reconnect=[{"op": "set_auth", "auth": {"token": fresh}}])  # fmt: skip
    observations = await while_away(script, tmp_path, lambda: send_20(cluster, "b"))
    assert [c["recovered"] for c in connects(observations)] == [False, True]
    assert texts(observations) == [f"m{n}" for n in range(20)]


async def test_with_redis_down_connects_work_and_nothing_is_recovered(
    cluster: Cluster, tmp_path: Path
) -> None:
    token = (await cluster.idp.user_tokens("alice"))["access_token"]

    async def redis_goes_away() -> None:
        await send_20(cluster, "b")
        await cluster.redis.stop()

    try:
        observations = await while_away(script_on(cluster, "a", token, tmp_path), tmp_path,
                                        redis_goes_away)  # fmt: skip
    finally:
        await cluster.redis.restart()
    assert [c["recovered"] for c in connects(observations)] == [False, False]
    assert "connect_error" not in [o["type"] for o in observations]
    assert texts(observations) == []


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["drained", "killed"])
async def test_after_its_node_stops_the_client_recovers_on_the_other_node(
    cluster: Cluster, tmp_path: Path, stop: signal.Signals
) -> None:
    """A rolling deploy's step (SIGTERM: drained) or a crash (SIGKILL). (Last: it stops
    node A, then starts it again.)"""
    token = (await cluster.idp.user_tokens("alice"))["access_token"]
    steps = [{"op": "wait_disconnect", "timeout_ms": 15000}]
    script = recovery_script(cluster["a"].url, {"token": token}, tmp_path, expect=20, reconnect=[
        {"op": "set_url", "url": cluster["b"].url}])  # fmt: skip
    # the transport is lost by the node's death, not by the client
    index = next(i for i, s in enumerate(script["steps"]) if s["op"] == "close_transport")
    script["steps"][index : index + 1] = [{"op": "write_file", "path": str(tmp_path / "ready")},
                                          *steps]  # fmt: skip
    client = asyncio.create_task(while_away(script, tmp_path, lambda: send_20(cluster, "b")))
    assert await wait_file(tmp_path / "ready", client.done)
    process = cluster["a"].process
    assert process is not None
    process.send_signal(stop)
    await asyncio.wait_for(process.wait(), 20)
    try:
        observations = await client
    finally:
        await cluster["a"].start(cluster.config)
    assert [c["recovered"] for c in connects(observations)] == [False, True]
    assert texts(observations) == [f"m{n}" for n in range(20)]


async def test_events_published_at_once_by_both_nodes_arrive_in_the_log_order(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A client on each node, in the same two rooms, while both nodes publish into them
    at once: each gets every event once, in one order, its offsets strictly increasing
    (a client that recovers from its last offset then misses nothing before it)."""
    token = (await cluster.idp.user_tokens("alice"))["access_token"]

    def listener(node: str) -> dict[str, Any]:
        return {
            "url": cluster[node].url,
            "options": {"transports": ["websocket"], "auth": {"token": token}},
            "steps": [{"op": "connect"}, join(GENERAL), join(STAFF),
                      {"op": "write_file", "path": str(tmp_path / node)},
                      {"op": "wait_file", "path": str(tmp_path / "done"), "timeout_ms": 20000},
                      {"op": "sleep", "ms": 800}],
            "record": ["chat:message"], "timeout_ms": 30000,
        }  # fmt: skip

    clients = [asyncio.create_task(run_js_client(listener(node), timeout_s=40)) for node in "ab"]
    for node in "ab":
        assert await wait_file(tmp_path / node, lambda: any(c.done() for c in clients))
    async with from_both_nodes(cluster) as sent:
        await asyncio.sleep(2)
    (tmp_path / "done").write_text("")
    for client in clients:
        observations = await client
        assert [c["recovered"] for c in connects(observations)] == [False]
        assert_log_order(observations, sent)
    assert len(sent) > 100


async def test_a_recovery_amid_publishing_from_both_nodes_gets_every_event_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The client loses its transport and reconnects while both nodes keep publishing
    into its rooms: recovered, every event exactly once, in the log's order."""
    token = (await cluster.idp.user_tokens("alice"))["access_token"]
    script = recovery_script(cluster["a"].url, {"token": token}, tmp_path,
                             before=[{"op": "write_file", "path": str(tmp_path / "joined")},
                                     {"op": "sleep", "ms": 700}])  # fmt: skip
    script["steps"][-1:] = [{"op": "wait_file", "path": str(tmp_path / "done"),
                             "timeout_ms": 20000}, {"op": "sleep", "ms": 800}]  # fmt: skip
    # away for 0.5 s while both nodes keep publishing
    client = asyncio.create_task(while_away(script, tmp_path, lambda: asyncio.sleep(0.5)))
    assert await wait_file(tmp_path / "joined", client.done)
    async with from_both_nodes(cluster) as sent:
        assert await wait_file(tmp_path / "go", client.done)  # it reconnects
        await asyncio.sleep(1)  # and gets live events a while
    (tmp_path / "done").write_text("")
    observations = await client
    assert [c["recovered"] for c in connects(observations)] == [False, True]
    assert_log_order(observations, sent)
    assert len(sent) > 100


async def test_with_redis_down_events_still_reach_the_nodes_own_clients(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The log and the bus gone: a node delivers to its own members (unlogged, so without
    an offset that a recovery could take for a position in the log)."""
    token = (await cluster.idp.user_tokens("alice"))["access_token"]
    script = {
        "url": cluster["a"].url, "options": {"transports": ["websocket"], "auth": {"token": token}},
        "steps": [{"op": "connect"}, join(GENERAL),
                  {"op": "write_file", "path": str(tmp_path / "joined")},
                  {"op": "wait_file", "path": str(tmp_path / "done"), "timeout_ms": 20000},
                  {"op": "sleep", "ms": 500}],
        "record": ["chat:message"], "timeout_ms": 30000,
    }  # fmt: skip
    client = asyncio.create_task(run_js_client(script, timeout_s=40))
    assert await wait_file(tmp_path / "joined", client.done)
    await cluster.redis.stop()
    try:
        async with server_api(cluster) as emit:
            for number in range(5):
                await emit("a", GENERAL, f"d{number}")
    finally:
        (tmp_path / "done").write_text("")
        observations = await client
        await cluster.redis.restart()
    assert texts(observations) == [f"d{n}" for n in range(5)]
    assert all(len(args) == 1 for args in messages(observations))  # no offset
