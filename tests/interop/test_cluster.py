"""Three ssoio nodes (separate processes) over a real redis-server, against the node
OpenID Provider: security actions and filtering cross nodes; Redis can go away and
come back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from .cluster_nodes import Node, cluster_config
from .provider import NodeProvider, UserLogin, require_tool
from .redis_server import RedisServer
from .ssoio_server import Client
from .web_login import Browser, free_port

pytestmark = pytest.mark.interop


@dataclass
class Cluster:
    idp: NodeProvider
    redis: RedisServer
    nodes: dict[str, Node]

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    require_tool("redis-server")
    workdir = tmp_path_factory.mktemp("cluster")
    ports = {name: free_port() for name in ("a", "b", "c")}
    public_url = f"http://127.0.0.1:{ports['a']}"  # node A stands in for the load balancer
    idp = await NodeProvider.start(
        redirect_uris=[f"{public_url}/auth/callback"], post_logout_redirect_uris=[f"{public_url}/"],
        backchannel_logout_uri=f"{public_url}/auth/backchannel-logout",
    )  # fmt: skip
    redis = await RedisServer.start()
    config = cluster_config(workdir / "ssoio.toml", idp, redis.url, public_url)
    nodes = {name: Node(name, port, workdir / f"{name}.log") for name, port in ports.items()}
    try:
        await asyncio.gather(*(node.start(config) for node in nodes.values()))
        yield Cluster(idp, redis, nodes)
    finally:
        await asyncio.gather(*(node.stop() for node in nodes.values()))
        await redis.stop()
        await idp.stop()
    for node in nodes.values():
        assert "Traceback" not in node.log, node.log[-4000:]


@pytest_asyncio.fixture(loop_scope="session")
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        await client.close()


async def connect(cluster: Cluster, clients: list[Client], node: str, user: str) -> Client:
    client = Client(cluster[node].url)
    clients.append(client)
    token = (await cluster.idp.user_tokens(user))["access_token"]
    assert await client.connect(token), client.connect_error
    client.sio.on("note", client._recorder("note"))
    return client


async def join_all(room: str, *members: Client) -> None:
    for member in members:
        assert (await member.call("room:join", {"room": room}))["ok"]


async def test_chat_crosses_nodes_with_a_server_stamped_from(
    cluster: Cluster, clients: list[Client]
) -> None:
    alice, erin = (
        await connect(cluster, clients, "a", "alice"),
        await connect(cluster, clients, "b", "erin"),
    )
    await join_all("tenant:acme:general", alice, erin)
    assert (await alice.call("chat:send", {"room": "tenant:acme:general", "text": "hi"}))["ok"]
    expected = {"room": "tenant:acme:general", "text": "hi",
                "from": {"sub": "alice", "username": "alice"}}  # fmt: skip
    assert await erin.wait_for("chat:message") == [expected]
    assert await alice.wait_for("chat:message") == [expected]


async def test_filtering_holds_per_recipient_on_every_node(
    cluster: Cluster, clients: list[Client]
) -> None:
    alice = await connect(cluster, clients, "a", "alice")  # staff
    erin = await connect(cluster, clients, "b", "erin")  # not staff
    bob = await connect(cluster, clients, "c", "bob")  # staff
    await join_all("tenant:acme:notes", alice, erin, bob)
    note = {"room": "tenant:acme:notes", "text": "t", "secret": "s3"}
    assert (await erin.call("note:send", note))["ok"]
    for staff in (alice, bob):
        [seen] = await staff.wait_for("note")
        assert seen["secret"] == "s3"
        assert seen["from"] == {"sub": "erin", "username": "erin"}
    [own] = await erin.wait_for("note")
    assert "secret" not in own
    presence_for_alice = await alice.call("presence:list", {"room": "tenant:acme:notes"})
    presence_for_erin = await erin.call("presence:list", {"room": "tenant:acme:notes"})
    subs = sorted(m["sub"] for m in presence_for_alice["members"])
    assert subs == ["alice", "bob", "erin"]
    assert all("email" in m for m in presence_for_alice["members"])
    assert sorted(m["sub"] for m in presence_for_erin["members"]) == subs
    assert all("email" not in m for m in presence_for_erin["members"])
    assert "partial" not in presence_for_alice


async def test_kick_and_api_disconnect_cross_nodes(cluster: Cluster, clients: list[Client]) -> None:
    alice = await connect(cluster, clients, "a", "alice")
    erin = await connect(cluster, clients, "b", "erin")
    carol = await connect(cluster, clients, "c", "carol")
    bob = await connect(cluster, clients, "c", "bob")
    assert await alice.call("admin:kick", {"sub": "carol"}) == {"ok": True, "kicked": 0}
    assert await alice.call("admin:kick", {"sub": "erin"}) == {"ok": True, "kicked": 1}
    assert await erin.wait_for("auth:revoked") == [{"code": "kicked"}]
    assert carol.sio.connected
    token = await cluster.idp.client_credentials_token()  # the backend of tenant acme
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {token}"}
        globex = await http.post(f"{cluster['a'].url}/api/v1/disconnect", json={"sub": "carol"},
                                 headers=headers)  # fmt: skip
        acme = await http.post(f"{cluster['a'].url}/api/v1/disconnect", json={"sub": "bob"},
                               headers=headers)  # fmt: skip
    # api.disconnect.same_attributes = ["tenant"], applied on every node
    assert globex.json() == {"ok": True, "disconnected": 0}
    assert acme.json() == {"ok": True, "disconnected": 1}
    assert await bob.wait_for("auth:revoked") == [{"code": "kicked"}]
    assert carol.sio.connected
    assert carol.got("auth:revoked") == []


async def test_backchannel_logout_on_a_disconnects_the_socket_on_b(
    cluster: Cluster, clients: list[Client]
) -> None:
    browser = Browser(cluster["a"].url)
    try:
        await browser.sign_in("bob")
        # the session lives in Redis: node B serves the hand-off for node A's cookie
        hand_off = await browser.http.get(f"{cluster['b'].url}/auth/token")
        assert hand_off.status_code == 200, hand_off.text
        socket = Client(cluster["c"].url)
        clients.append(socket)
        assert await socket.connect(hand_off.json()["access_token"])
        await cluster.idp.end_session(UserLogin(tokens={}, cookies=browser.http.cookies))
        assert await socket.wait_for("auth:revoked") == [{"code": "logged_out"}]
        after = await browser.http.get(f"{cluster['b'].url}/auth/token")
        assert after.status_code == 401
    finally:
        await browser.close()


async def test_sign_in_started_on_a_completes_on_b(cluster: Cluster) -> None:
    """The login transaction travels in the pre-login cookie (nothing stored at A): the
    callback may land on any node; the session it opens is in Redis for every node."""
    browser = Browser(cluster["a"].url)
    try:
        callback = await browser.to_callback("erin", await browser.start_login("/x"))
        on_b = callback.replace(cluster["a"].url, cluster["b"].url, 1)
        done = await browser.http.get(on_b)
        assert (done.status_code, done.headers["location"]) == (303, "/x"), done.text[:300]
        me = await browser.http.get(f"{cluster['c'].url}/auth/me")
        assert me.json()["sub"] == "erin"
    finally:
        await browser.close()


async def test_redis_stopped_and_restarted(cluster: Cluster, clients: list[Client]) -> None:
    alice = await connect(cluster, clients, "a", "alice")
    dave = await connect(cluster, clients, "a", "dave")
    await join_all("tenant:acme:ops", alice, dave)
    erin = await connect(cluster, clients, "b", "erin")
    await cluster.redis.stop()
    try:
        # local work goes on: rooms, chat between clients of the same node
        assert (await alice.call("chat:send", {"room": "tenant:acme:ops", "text": "still"}))["ok"]
        assert [m["text"] for m in await dave.wait_for("chat:message")] == ["still"]
        presence = await alice.call("presence:list", {"room": "tenant:acme:ops"})
        assert presence["ok"]
        assert presence.get("partial") is True  # the other nodes could not be asked
        browser = Browser(cluster["b"].url)
        browser.http.cookies.set("ssoio_session", "x.y", domain="127.0.0.1")
        answer = await browser.http.get(f"{cluster['b'].url}/auth/me")
        login = await browser.http.get(f"{cluster['b'].url}/auth/login")
        await browser.close()
        assert answer.status_code in (401, 503)
        # a sign-in still starts: its state is in the pre-login cookie, not in Redis (and
        # the login rate limit falls back to the node's own buckets)
        assert login.status_code == 302
        # a new connection with a valid token still works (limits fall back per node)
        await connect(cluster, clients, "c", "carol")
    finally:
        await cluster.redis.restart()
    await join_all("tenant:acme:ops", erin)
    for _ in range(100):  # bounded (~20 s): until the nodes' subscriptions are back
        assert (await alice.call("chat:send", {"room": "tenant:acme:ops", "text": "back"}))["ok"]
        if any(m["text"] == "back" for m in await erin.wait_for("chat:message", timeout_s=0.2)):
            break
    assert any(m["text"] == "back" for m in erin.got("chat:message"))
    node_b_log = Path(cluster["b"].log_path).read_text()
    assert '"event": "cluster.down"' in node_b_log
    assert '"event": "cluster.up"' in node_b_log
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{cluster['b'].url}/metrics")).text
    assert 'ssoio_security_events_total{kind="cluster_down"}' in metrics
