"""Limits keyed by what they protect (issue #20): addresses pay for anonymous and failed
attempts, users and tenants for authenticated ones; named ranges share one budget."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ssoio.config.model import Settings
from ssoio.config.server import BucketSettings
from ssoio.errors import SsoioError
from ssoio.policy.engine import Policy
from ssoio.realtime.pending import PendingSessions
from ssoio.realtime.ratelimit import RateLimiter
from tests.realtime.conftest import World
from tests.support.clock import FakeClock

OFFICE = "10.20.0.7"


async def limited(world: World, **limits: Any) -> None:
    """Reload ``world``'s gateway with ``limits`` over the example's."""
    settings = world.gateway.settings
    raw = settings.model_dump(mode="python")
    raw["limits"] = {**raw["limits"], **limits}
    updated = Settings.model_validate(_secrets(raw))
    await world.gateway.apply(updated, Policy(updated))


def _secrets(value: Any) -> Any:
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_secrets(v) for v in value]
    return value


async def connect(world: World, sub: str, ip: str = OFFICE, sid: str | None = None,
                  **claims: Any) -> str:  # fmt: skip
    sid = sid or f"sid-{sub}-{len(world.gateway.connections)}"
    auth = {"token": world.token("erin", sub=sub, **claims)}
    await world.gateway.connect(sid, f"e-{sid}", "/", {"REMOTE_ADDR": ip}, auth)
    return sid


async def refusal(world: World, sub: str, ip: str = OFFICE, **claims: Any) -> SsoioError:
    with pytest.raises(SsoioError) as caught:
        await connect(world, sub, ip, **claims)
    return caught.value


async def bad_token(world: World, ip: str) -> str:
    auth = {"token": world.token("erin")[:-4] + "AAAA"}
    with pytest.raises(SsoioError) as caught:
        await world.gateway.connect("bad", "e-bad", "/", {"REMOTE_ADDR": ip}, auth)
    return caught.value.code


async def test_authenticated_connects_do_not_spend_the_address_budget(world: World) -> None:
    """The fake clock stands still: with a spent-and-kept budget the fourth would fail."""
    await limited(world, connects_per_ip={"rate": 0.001, "burst": 3})
    for n in range(50):
        await connect(world, f"person-{n}")
    assert len(world.gateway.connections) == 50


async def test_failed_attempts_spend_the_address_budget(world: World) -> None:
    await limited(world, connects_per_ip={"rate": 0.001, "burst": 3},
                  failed_auth_per_ip={"rate": 0.001, "burst": 100})  # fmt: skip
    assert [await bad_token(world, OFFICE) for _ in range(3)] == ["signature_invalid"] * 3
    refused = await refusal(world, "person-1")
    assert refused.code == "rate_limited"
    await connect(world, "person-1", ip="10.20.0.8")  # another address is not affected


async def test_failed_authentications_throttle_only_their_address(world: World) -> None:
    burst = world.gateway.settings.limits.failed_auth_per_ip.burst
    codes = [await bad_token(world, OFFICE) for _ in range(burst + 20)]
    assert codes[:burst] == ["signature_invalid"] * burst
    assert set(codes[burst:]) == {"rate_limited"}
    await connect(world, "someone", ip="10.20.0.8")


async def test_one_user_past_the_socket_cap_is_refused_alone(world: World) -> None:
    cap = world.gateway.settings.limits.sockets_per_user
    for _ in range(cap):
        await connect(world, "tabby")
    refused = await refusal(world, "tabby")
    assert (refused.code, getattr(refused, "limit", None)) == ("rate_limited", "sockets_per_user")
    await connect(world, "neighbour")  # same address, another person


async def test_a_user_reconnecting_in_a_loop_meets_the_user_bucket(world: World) -> None:
    await limited(world, connects_per_user={"rate": 0.001, "burst": 5})
    for _ in range(5):
        sid = await connect(world, "looper")
        world.gateway.disconnected(sid, None, "client disconnect")
    refused = await refusal(world, "looper")
    assert getattr(refused, "limit", None) == "connects_per_user"
    await connect(world, "calm")


async def test_tenant_limits_are_off_by_default_and_per_tenant_when_on(world: World) -> None:
    assert world.gateway.settings.limits.tenants is None
    await limited(world, tenants={"attribute": "tenant", "max_sockets": 2})
    await connect(world, "a1")
    await connect(world, "a2")
    refused = await refusal(world, "a3")
    assert getattr(refused, "limit", None) == "tenants.max_sockets"
    await connect(world, "g1", tenant="globex")  # another tenant is not affected


async def test_a_named_range_shares_one_budget_of_its_own(world: World) -> None:
    await limited(world, address_ranges=[{
        "name": "office", "cidrs": ["10.30.0.0/29"],
        "failed_auth": {"rate": 0.001, "burst": 4}, "max_unauthenticated": 2,
    }])  # fmt: skip
    codes = [await bad_token(world, f"10.30.0.{n % 4 + 1}") for n in range(6)]
    assert codes == ["signature_invalid"] * 4 + ["rate_limited"] * 2
    await connect(world, "elsewhere", ip="10.30.0.9")  # outside the range: its own budget
    opened = world.gateway.session_opened
    assert [opened(f"s{n}", f"10.30.0.{n + 1}") is True for n in range(3)] == [True] * 3
    world.clock.advance(world.gateway.settings.realtime.handshake_window_s)
    assert opened("s3", "10.30.0.5") is not True  # the range holds 3 idle, over its 2


def test_pending_sessions_age_from_handshaking_to_idle() -> None:
    pending = PendingSessions()
    for n in range(3):
        pending.add(f"s{n}", "k", now=100.0 + n)
    assert pending.held_by("k", 101.5, window_s=1.0) == (2, 1)
    assert pending.remove("s0")
    assert pending.remove("s2")
    assert pending.held_by("k", 110.0, window_s=1.0) == (0, 1)
    assert pending.remove("s1")
    assert (len(pending), pending.addresses) == (0, 0)
    assert pending.held_by("k", 110.0, window_s=1.0) == (0, 0)


def test_a_refund_returns_a_spent_token_never_more() -> None:
    clock = FakeClock()
    limiter = RateLimiter(BucketSettings(rate=0.001, burst=2), clock, 10)
    assert [limiter.take("k") for _ in range(3)] == [True, True, False]
    asyncio.run(limiter.refund("k"))
    assert [limiter.take("k") for _ in range(2)] == [True, False]
    for _ in range(5):
        asyncio.run(limiter.refund("k"))
    assert [limiter.take("k") for _ in range(3)] == [True, True, False]
