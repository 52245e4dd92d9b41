"""The gateway with a fake transport and a fake clock: guards, lifetime, delivery."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ssoio.errors import SsoioError
from ssoio.realtime.gateway import room_key
from tests.realtime.conftest import World


async def test_connect_auto_joins_and_indexes(world: World) -> None:
    sid = await world.connect("alice")
    connection = world.gateway.connections.get(sid)
    assert connection is not None
    assert connection.rooms == {"user:alice", "tenant:acme"}
    assert world.transport.rooms[room_key("tenant:acme")] == {sid}


async def test_connect_refusal_counts_against_the_ip(world: World) -> None:
    for _ in range(world.gateway.settings.limits.failed_auth_per_ip.burst):
        with pytest.raises(SsoioError, match="signature"):
            await world.gateway.connect("s", "e", "/", {"REMOTE_ADDR": "10.9.9.9"},
                                        {"token": world.token("alice")[:-4] + "AAAA"})  # fmt: skip
    with pytest.raises(SsoioError) as caught:
        await world.gateway.connect("s", "e", "/", {"REMOTE_ADDR": "10.9.9.9"},
                                    {"token": world.token("alice")})  # fmt: skip
    assert caught.value.code == "rate_limited"
    await world.connect("bob")  # another address is not affected


async def test_events_are_rate_limited_per_connection(world: World) -> None:
    sid = await world.connect("erin")
    answers = [await world.send(sid, "room:join", {"room": "tenant:acme:x"}) for _ in range(60)]
    codes = [a["error"]["code"] if a and not a["ok"] else "ok" for a in answers]
    assert codes[:50] == ["ok"] * 50
    assert set(codes[50:]) == {"rate_limited"}
    world.clock.advance(1)
    assert (await world.send(sid, "room:join", {"room": "tenant:acme:x"})) == {
        "ok": True, "room": "tenant:acme:x",
    }  # fmt: skip


async def test_unknown_connection_events_are_dropped(world: World) -> None:
    assert await world.send("nobody", "room:join", {"room": "staff"}) is None


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"room": "staff", "extra": 1}, "invalid_payload"),
        ("staff", "invalid_payload"),
        ({"room": "tenant:*:x"}, "invalid_payload"),
        ({"room": "staff"}, "forbidden"),
        ({"room": "user:alice"}, "forbidden"),
        ({"room": "tenant:globex:general"}, "forbidden"),
    ],
)
async def test_join_refusals(world: World, payload: Any, code: str) -> None:
    sid = await world.connect("erin")
    answer = await world.send(sid, "room:join", payload)
    assert answer is not None
    assert answer["error"]["code"] == code


async def test_two_payloads_are_refused(world: World) -> None:
    sid = await world.connect("alice")
    answer = await world.gateway.handle_event(sid, "room:join", [{"room": "staff"}, {}])
    assert answer is not None
    assert answer["error"] == {
        "code": "invalid_payload",
        "message": "an event carries one JSON payload",
    }


async def test_relay_stamps_from_and_ignores_client_attempts(world: World) -> None:
    sid = await world.connect("bob")
    await world.send(sid, "room:join", {"room": "tenant:acme:general"})
    forged = await world.send(sid, "chat:send", {"room": "tenant:acme:general", "text": "x",
                                                 "from": {"sub": "alice"}})  # fmt: skip
    assert forged is not None
    assert forged["error"]["code"] == "invalid_payload"
    assert await world.send(sid, "chat:send", {"room": "tenant:acme:general", "text": "hi"}) == {
        "ok": True
    }
    assert world.transport.to(room_key("tenant:acme:general")) == [
        ("chat:message", {"room": "tenant:acme:general", "text": "hi",
                          "from": {"sub": "bob", "username": "bob"}}),
    ]  # fmt: skip


async def test_filtered_delivery_groups_recipients(world: World) -> None:
    alice, erin = await world.connect("alice"), await world.connect("erin")
    for sid in (alice, erin):
        await world.send(sid, "room:join", {"room": "tenant:acme:general"})
    event = world.gateway.policy.events.find("chat:send")
    assert event is not None
    from ssoio.policy.visibility import FieldVisibility

    visibility = FieldVisibility.compile({"email": "role:staff"})
    await world.gateway.deliver("tenant:acme:general", "memo", {"text": "x", "email": "a@x"},
                                visibility)  # fmt: skip
    assert world.transport.to(alice) == [("memo", {"text": "x", "email": "a@x"})]
    assert world.transport.to(erin) == [("memo", {"text": "x"})]


async def test_presence_filters_emails_by_recipient(world: World) -> None:
    alice, erin = await world.connect("alice"), await world.connect("erin")
    await world.connect("alice", sid="alice-2")  # one user, two connections: listed once
    for sid in (alice, erin, "alice-2"):
        await world.send(sid, "room:join", {"room": "tenant:acme:general"})
    staff = await world.send(alice, "presence:list", {"room": "tenant:acme:general"})
    other = await world.send(erin, "presence:list", {"room": "tenant:acme:general"})
    assert staff is not None
    assert other is not None
    assert staff["members"] == [
        {"sub": "alice", "username": "alice", "email": "alice@acme.example"},
        {"sub": "erin", "username": "erin", "email": "erin@acme.example"},
    ]
    assert other["members"] == [{"sub": "alice", "username": "alice"},
                                {"sub": "erin", "username": "erin"}]  # fmt: skip


async def test_kick_only_within_the_tenant(world: World) -> None:
    alice, erin, carol = [await world.connect(u) for u in ("alice", "erin", "carol")]
    assert await world.send(alice, "admin:kick", {"sub": "carol"}) == {"ok": True, "kicked": 0}
    assert await world.send(alice, "admin:kick", {"sub": "erin"}) == {"ok": True, "kicked": 1}
    assert world.transport.to(erin) == [("auth:revoked", {"code": "kicked"})]
    assert world.transport.disconnected == [erin]
    denied = await world.send(erin, "admin:kick", {"sub": "alice"})
    assert denied is not None
    assert denied["error"]["code"] == "forbidden"
    assert carol not in world.transport.disconnected


async def test_expiry_warns_then_disconnects(world: World) -> None:
    sid = await world.connect("bob")
    world.clock.advance(240)  # exp - 60 s
    await world.gateway.tick()
    assert world.transport.to(sid) == [("auth:expiring", {"expires_in": 60})]
    world.clock.advance(60 + 29)  # within the leeway: still valid
    await world.gateway.tick()
    assert world.transport.disconnected == []
    world.clock.advance(1.5)  # past exp + leeway, before the timer ran: only refresh works
    assert (await world.send(sid, "room:join", {"room": "staff"})) == {
        "ok": False,
        "error": {"code": "reauth_required",
                  "message": "the token has expired; send auth:refresh first"},
    }  # fmt: skip
    await world.gateway.tick()
    assert world.transport.to(sid)[-1] == ("auth:revoked", {"code": "token_expired"})
    assert world.transport.disconnected == [sid]


async def test_refresh_extends_and_reevaluates_rooms(world: World) -> None:
    sid = await world.connect("bob")
    await world.send(sid, "room:join", {"room": "staff"})
    world.clock.advance(200)
    fewer = world.token("bob", realm_access={"roles": []})
    answer = await world.send(sid, "auth:refresh", {"token": fewer})
    assert answer == {"ok": True, "expires_in": 300}
    assert ("room:revoked", {"room": "staff", "code": "permission_revoked"}) in world.transport.to(
        sid
    )
    connection = world.gateway.connections.get(sid)
    assert connection is not None
    assert "staff" not in connection.rooms
    assert "tenant:acme" in connection.rooms
    world.clock.advance(150)  # the old token's expiry timers no longer apply
    await world.gateway.tick()
    assert world.transport.disconnected == []


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"sub": "alice"}, "forbidden"),
        ({"exp": 1}, "token_expired"),
        ({"aud": "other"}, "audience_mismatch"),
    ],
)
async def test_refresh_refusals(world: World, overrides: dict[str, Any], code: str) -> None:
    sid = await world.connect("bob")
    answer = await world.send(sid, "auth:refresh", {"token": world.token("bob", **overrides)})
    assert answer is not None
    assert answer["error"]["code"] == code
    connection = world.gateway.connections.get(sid)
    assert connection is not None
    assert connection.principal.subject == "bob"


async def test_unauthenticated_sessions_time_out_and_are_capped(world: World) -> None:
    """Idle sessions (older than realtime.handshake_window_s) are capped per address;
    younger ones are still handshaking and do not count against that cap."""
    opened = world.gateway.session_opened
    assert all(opened(f"e{i}", "10.1.1.1") is True for i in range(20))
    assert opened("young", "10.1.1.1") is True  # all 20 are in their handshake window
    world.clock.advance(world.gateway.settings.realtime.handshake_window_s)
    refused = opened("e20", "10.1.1.1")
    assert isinstance(refused, SsoioError)
    assert refused.code == "rate_limited"
    assert opened("x", "10.1.1.2") is True
    world.clock.advance(5)
    await world.gateway.tick()
    expected = [f"e{i}" for i in range(20)] + ["young", "x"]
    assert sorted(world.transport.closed) == sorted(expected)
    assert opened("e21", "10.1.1.1") is True


async def test_handshakes_inside_the_window_have_a_ceiling(world: World) -> None:
    """realtime.max_handshakes_per_ip bounds a flood that stays inside the window."""
    opened = world.gateway.session_opened
    ceiling = world.gateway.settings.realtime.max_handshakes_per_ip
    assert all(opened(f"h{i}", "10.1.1.1") is True for i in range(ceiling))
    assert opened("over", "10.1.1.1") is not True
    assert opened("other", "10.1.1.2") is True
    assert world.gateway.unauthenticated_sessions == ceiling + 1


async def test_a_failing_timer_does_not_drop_the_others_due(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """tick() pops everything due at once: one failure must not lose the rest."""
    closed = world.transport.closed

    async def close_session(eio_sid: str) -> None:
        if eio_sid == "a":
            raise RuntimeError("the transport broke")
        closed.append(eio_sid)

    world.transport.close_session = close_session  # type: ignore[method-assign]
    for eio_sid in ("a", "b", "c"):
        assert world.gateway.session_opened(eio_sid, "10.1.1.1")
    world.clock.advance(5)
    await world.gateway.tick()
    assert sorted(closed) == ["b", "c"]
    assert "timers.failed kind=RuntimeError" in caplog.text
    assert "the transport broke" not in caplog.text


async def test_sessions_that_authenticated_do_not_wake_the_timer_loop(world: World) -> None:
    """Their timeout entries stay in the scheduler (lazy deletion); the loop must look past
    them instead of waking once for each (at 1,000 connects per second, 1,000 wake-ups)."""
    ticks = 0
    tick = world.gateway.timers.tick

    async def counted() -> None:
        nonlocal ticks
        ticks += 1
        await tick()

    world.gateway.timers.tick = counted  # type: ignore[method-assign]
    for i in range(20):
        world.gateway.session_opened(f"e-s{i}", "10.0.0.1")
        await world.connect("alice", f"s{i}")
        world.clock.advance(0.01)
    # just before the first (stale) timeout entry: without the skip, the loop would wake
    # every millisecond (the fake clock stands still) for as long as this test waits
    await world.gateway.stop()  # (connect started it)
    world.clock.advance(world.gateway.settings.realtime.unauthenticated_timeout_s - 0.201)
    ticks = 0
    world.gateway.start()
    await asyncio.sleep(0.3)
    await world.gateway.stop()
    assert ticks <= 3


async def test_disconnect_hooks(world: World) -> None:
    a1 = await world.connect("alice")
    a2 = await world.connect("alice", sid="alice-2")
    await world.connect("bob")
    assert await world.gateway.disconnect_session("primary", "idp-session-alice", "logged_out") == 2
    assert sorted(world.transport.disconnected) == sorted([a1, a2])
    assert world.transport.to(a1) == [("auth:revoked", {"code": "logged_out"})]
    assert await world.gateway.disconnect_user("bob", "kicked") == 1


async def test_disconnect_cleans_every_index(world: World) -> None:
    sid = await world.connect("alice")
    await world.send(sid, "room:join", {"room": "staff"})
    world.gateway.disconnected(sid, f"e-{sid}", "client disconnect")
    assert world.gateway.connections.sizes() == {"connections": 0, "users": 0, "sessions": 0,
                                                 "rooms": 0}  # fmt: skip
