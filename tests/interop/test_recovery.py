"""Connection state recovery with the official ``socket.io-client`` 4.8 (node) against a
real ssoio node (uvicorn on 127.0.0.1) and the node OpenID Provider's tokens: the wire
protocol of socket.io 4.6+ (pid, offsets, ``socket.recovered``), and every grant
re-checked on recovery. Single node, in memory (the cluster: test_recovery_cluster.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ssoio.app import SsoServer
from tests.support.transport_path import ssoio_only

from .js_client import run_js_client
from .provider import NodeProvider, jwt_payload
from .recovery_client import (
    GENERAL,
    RECORDED,
    RECOVERY,
    STAFF,
    connects,
    join,
    messages,
    recovery_script,
    streaming,
    wait_file,
    while_away,
)
from .ssoio_server import Client, example_settings, running_ssoio

pytestmark = [pytest.mark.interop, ssoio_only(RECOVERY)]

GENEROUS = {
    "connects_per_ip": {"rate": 1000, "burst": 1000},
    "failed_auth_per_ip": {"rate": 1000, "burst": 1000},
}
CHAT = "chat"  # a room for tokens with scope chat (one refreshed without it loses it)
NOTE = {  # a relay event whose `secret` only staff receive
    "requires": "authenticated", "fields": {"room": "room", "text": "string", "secret": "string"},
    "room_field": "room", "deliver_as": "note", "visible": {"secret": "role:staff"},
}  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def node(node_idp: NodeProvider) -> AsyncIterator[tuple[str, SsoServer]]:
    rooms = example_settings(node_idp).model_dump(mode="python")["rooms"]
    settings = example_settings(
        node_idp, limits=GENEROUS, recovery={"enabled": True, "max_disconnection_s": 2},
        rooms=[*rooms, {"pattern": CHAT, "join": "scope:chat"}], events={"note:send": NOTE},
    )  # fmt: skip
    async with running_ssoio(settings) as running:
        yield running


async def send_20(server: SsoServer, rooms: tuple[str, ...] = (GENERAL, STAFF)) -> None:
    for number in range(20):
        room = rooms[number % len(rooms)]
        await server.emit("chat:message", {"room": room, "text": f"m{number}"}, room=room)


async def test_missed_events_arrive_once_in_order_and_recovered_is_true(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path
) -> None:
    url, server = node
    token = (await node_idp.user_tokens("alice"))["access_token"]
    await_first: list[dict[str, Any]] = [
        {"op": "write_file", "path": str(tmp_path / "joined")},
        {"op": "wait", "event": "chat:message", "timeout_ms": 10000},
    ]
    script = recovery_script(url, {"token": token}, tmp_path, before=await_first, expect=20)
    task = asyncio.create_task(while_away(script, tmp_path, lambda: send_20(server)))
    assert await wait_file(tmp_path / "joined", task.done)
    # one live event first, so the client holds an offset (socket.io's own case)
    await server.emit("chat:message", {"room": GENERAL, "text": "live"}, room=GENERAL)
    observations = await task
    first, second = connects(observations)
    assert first["recovered"] is False
    assert second["recovered"] is True
    got = messages(observations)
    assert [args[0]["text"] for args in got] == ["live"] + [f"m{n}" for n in range(20)]
    offsets = [args[1] for args in got]  # socket.io 4.6+: the offset is the last argument
    assert len(set(offsets)) == 21
    assert sorted(offsets, key=lambda o: tuple(map(int, o.split("-")))) == offsets


async def test_a_client_that_received_nothing_yet_recovers_from_its_start(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path
) -> None:
    url, server = node
    token = (await node_idp.user_tokens("alice"))["access_token"]
    script = recovery_script(url, {"token": token}, tmp_path, expect=20)
    observations = await while_away(script, tmp_path, lambda: send_20(server))
    assert [c["recovered"] for c in connects(observations)] == [False, True]
    assert [args[0]["text"] for args in messages(observations)] == [f"m{n}" for n in range(20)]


async def test_another_users_token_with_the_victims_pid_recovers_nothing(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path
) -> None:
    url, server = node
    alice = (await node_idp.user_tokens("alice"))["access_token"]
    bob = (await node_idp.user_tokens("bob"))["access_token"]
    # the client keeps alice's pid and offset and presents bob's token on reconnect
    script = recovery_script(url, {"token": alice}, tmp_path,
                             reconnect=[{"op": "set_auth", "auth": {"token": bob}}])  # fmt: skip
    observations = await while_away(script, tmp_path, lambda: send_20(server, (STAFF,)))
    assert [c["recovered"] for c in connects(observations)] == [False, False]
    assert messages(observations) == []  # nothing of alice's session reaches bob


async def test_forged_pid_or_offset_is_a_fresh_connect(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path
) -> None:
    url, server = node
    token = (await node_idp.user_tokens("alice"))["access_token"]
    for number, forged in enumerate(({"pid": "A" * 24}, {"offset": "99999999999999-0"},
                                     {"offset": "1-0"}, {"offset": "x"})):  # fmt: skip
        signals = tmp_path / str(number)
        signals.mkdir()
        # auth wins over the client's own pid/offset (Object.assign({pid, offset}, auth))
        script = recovery_script(url, {"token": token}, signals, reconnect=[
            {"op": "set_auth", "auth": {"token": token, **forged}}])  # fmt: skip
        observations = await while_away(script, signals, lambda: send_20(server, (GENERAL,)))
        assert [c["recovered"] for c in connects(observations)] == [False, False], forged
        assert messages(observations) == [], forged


async def test_a_gap_longer_than_max_disconnection_is_not_recovered(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path
) -> None:
    url, server = node
    token = (await node_idp.user_tokens("alice"))["access_token"]
    script = recovery_script(url, {"token": token}, tmp_path)

    async def long_away() -> None:
        await send_20(server, (GENERAL,))
        await asyncio.sleep(2.5)  # recovery.max_disconnection_s = 2 here

    observations = await while_away(script, tmp_path, long_away)
    assert [c["recovered"] for c in connects(observations)] == [False, False]
    assert messages(observations) == []


async def test_after_a_kick_the_session_never_recovers(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path
) -> None:
    url, server = node
    token = (await node_idp.user_tokens("erin"))["access_token"]
    script = {
        "url": url, "options": {"transports": ["websocket"], "auth": {"token": token}},
        "steps": [
            {"op": "connect"}, join(GENERAL),
            {"op": "write_file", "path": str(tmp_path / "closed")},
            {"op": "wait_disconnect", "timeout_ms": 10000},
            {"op": "wait_file", "path": str(tmp_path / "go"), "timeout_ms": 15000},
            {"op": "connect"}, {"op": "sleep", "ms": 800},
        ],
        "record": RECORDED, "timeout_ms": 30000,
    }  # fmt: skip

    async def kick_then_send() -> None:
        assert await server.disconnect_user("erin") == 1  # kicked (the server API's path)
        await asyncio.sleep(0.3)
        await send_20(server, (GENERAL,))

    observations = await while_away(script, tmp_path, kick_then_send)
    assert [c["recovered"] for c in connects(observations)] == [False, False]
    assert messages(observations) == []


async def test_a_kick_while_away_ends_the_session_for_good(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path
) -> None:
    """``admin:kick`` by an admin (the event path) while erin's transport is away."""
    url, server = node
    token = (await node_idp.user_tokens("erin"))["access_token"]
    script = recovery_script(url, {"token": token}, tmp_path, rooms=(GENERAL,))

    async def kick_then_send() -> None:
        admin = Client(url)
        try:
            assert await admin.connect((await node_idp.user_tokens("alice"))["access_token"])
            answer = await admin.call("admin:kick", {"sub": "erin"})
            assert answer == {"ok": True, "kicked": 0}  # nothing live to kick
        finally:
            await admin.close()
        await send_20(server, (GENERAL,))

    observations = await while_away(script, tmp_path, kick_then_send)
    assert [c["recovered"] for c in connects(observations)] == [False, False]
    assert messages(observations) == []


async def test_a_refresh_that_lost_a_room_recovers_without_it(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path
) -> None:
    url, server = node
    token = (await node_idp.user_tokens("alice"))["access_token"]
    without_chat = await node_idp.user_tokens("alice", scope="openid profile email")
    script = recovery_script(url, {"token": token}, tmp_path, rooms=(GENERAL, CHAT), expect=10,
                             reconnect=[
        {"op": "set_auth", "auth": {"token": without_chat["access_token"]}}])  # fmt: skip
    observations = await while_away(script, tmp_path, lambda: send_20(server, (GENERAL, CHAT)))
    assert [c["recovered"] for c in connects(observations)] == [False, True]
    assert messages(observations, "room:revoked") == [
        [{"room": CHAT, "code": "permission_revoked"}]
    ]
    got = [args[0] for args in messages(observations)]
    assert [m["text"] for m in got] == [f"m{n}" for n in range(0, 20, 2)]
    assert {m["room"] for m in got} == {GENERAL}  # none of the lost room's events


@pytest.mark.parametrize(("user", "sees_secret"), [("alice", True), ("erin", False)])
async def test_missed_events_are_filtered_for_the_recipient(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path, user: str,
    sees_secret: bool,
) -> None:  # fmt: skip
    url, server = node
    token = (await node_idp.user_tokens(user))["access_token"]

    async def notes() -> None:
        for number in range(3):
            note = {"room": GENERAL, "text": f"n{number}", "secret": "s3"}
            await server.emit("note", note, room=GENERAL)

    script = recovery_script(
        url, {"token": token}, tmp_path, rooms=(GENERAL,), expect=3, event="note"
    )
    observations = await while_away(script, tmp_path, notes)
    assert [c["recovered"] for c in connects(observations)] == [False, True]
    got = [args[0] for args in messages(observations, "note")]
    assert [n["text"] for n in got] == ["n0", "n1", "n2"]
    assert all(("secret" in n) is sees_secret for n in got)


async def test_a_pid_recovered_once_cannot_be_used_again(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path
) -> None:
    url, _server = node
    token = (await node_idp.user_tokens("alice"))["access_token"]
    pid_file = tmp_path / "pid"
    first = recovery_script(url, {"token": token}, tmp_path, rooms=(GENERAL,))
    first["steps"][-1:] = [{"op": "write_pid", "path": str(pid_file)},
                           {"op": "wait_file", "path": str(tmp_path / "done"),
                            "timeout_ms": 15000}]  # fmt: skip
    holder = asyncio.create_task(while_away(first, tmp_path, lambda: asyncio.sleep(0)))
    for _ in range(400):  # bounded: 20 s
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    pid = pid_file.read_text()
    again = {"url": url, "options": {"transports": ["websocket"],
                                     "auth": {"token": token, "pid": pid}},
             "steps": [{"op": "connect"}, {"op": "sleep", "ms": 300}],
             "record": RECORDED}  # fmt: skip
    reused = await run_js_client(again)
    (tmp_path / "done").write_text("")
    assert [c["recovered"] for c in connects(await holder)] == [False, True]
    assert [c["recovered"] for c in connects(reused)] == [False]


async def test_events_sent_during_the_reconnect_arrive_once_and_in_order(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path
) -> None:
    """Live events keep coming while the client reconnects: the ones it missed are
    replayed after the CONNECT answer, the live ones follow, none twice, none lost."""
    url, server = node
    token = (await node_idp.user_tokens("alice"))["access_token"]
    script = recovery_script(url, {"token": token}, tmp_path, rooms=(GENERAL,))
    script["steps"][-1] = {"op": "sleep", "ms": 1500}

    async def send(number: int) -> None:
        await server.emit("chat:message", {"room": GENERAL, "text": str(number)}, room=GENERAL)

    async with streaming(send, pause_s=0.005):
        observations = await while_away(script, tmp_path, lambda: asyncio.sleep(0.3))
    assert [c["recovered"] for c in connects(observations)] == [False, True]
    numbers = [int(args[0]["text"]) for args in messages(observations)]
    assert len(numbers) > 50
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # no gap, no repeat


@pytest.mark.parametrize("how", ["user", "idp_session"])
async def test_a_logout_while_away_ends_the_session_for_good(
    node: tuple[str, SsoServer], node_idp: NodeProvider, tmp_path: Path, how: str
) -> None:
    url, server = node
    token = (await node_idp.user_tokens("bob"))["access_token"]
    claims = jwt_payload(token)

    async def logged_out() -> None:
        if how == "user":  # the server API's disconnect, an admin's kick
            await server.disconnect_user("bob", "logged_out")
        else:  # a back-channel logout of the provider session
            await server.disconnect_session("primary", claims["sid"], "logged_out")
        await send_20(server, (GENERAL,))

    script = recovery_script(url, {"token": token}, tmp_path, rooms=(GENERAL,))
    observations = await while_away(script, tmp_path, logged_out)
    assert [c["recovered"] for c in connects(observations)] == [False, False]
    assert messages(observations) == []
