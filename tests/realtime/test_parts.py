"""The realtime layer's pure parts: credentials, origins, buckets, the timer heap."""

from __future__ import annotations

from typing import Any

import pytest

from ssoio.config.server import BucketSettings
from ssoio.errors import AuthenticationError
from ssoio.realtime.credentials import find_credential
from ssoio.realtime.lifetime import Scheduler
from ssoio.realtime.origins import OriginPolicy
from ssoio.realtime.ratelimit import RateLimiter, TokenBucket
from tests.support.clock import FakeClock

COOKIE = "ssoio_session"


def credential(
    auth: Any = None, environ: dict[str, str] | None = None, allow_query: bool = False
) -> tuple[str, str]:
    found = find_credential(auth, environ or {}, cookie_name=COOKIE, allow_query=allow_query)
    return found.source, found.value


class TestCredentials:
    """auth.token, then Bearer header, then cookie; the first present decides."""

    @pytest.mark.parametrize(
        ("auth", "environ", "expected"),
        [
            ({"token": "T1"}, {}, ("auth", "T1")),
            ({"token": "T1"}, {"HTTP_AUTHORIZATION": "Bearer T2"}, ("auth", "T1")),
            ({}, {"HTTP_AUTHORIZATION": "Bearer T2"}, ("header", "T2")),
            (None, {"HTTP_AUTHORIZATION": "bearer  T2 "}, ("header", "T2")),
            (None, {"HTTP_AUTHORIZATION": "Bearer T2", "HTTP_COOKIE": f"{COOKIE}=S"},
             ("header", "T2")),
            (None, {"HTTP_COOKIE": f"a=1; {COOKIE}=S1; b=2"}, ("cookie", "S1")),
            ({"other": 1}, {"HTTP_COOKIE": f"{COOKIE}=S1"}, ("cookie", "S1")),
        ],
    )  # fmt: skip
    def test_order(self, auth: Any, environ: dict[str, str], expected: tuple[str, str]) -> None:
        assert credential(auth, environ) == expected

    @pytest.mark.parametrize(
        ("auth", "environ", "code"),
        [
            (None, {}, "token_missing"),
            ({}, {"HTTP_COOKIE": "other=1"}, "token_missing"),
            # a present but empty auth.token never falls through to the header
            ({"token": ""}, {"HTTP_AUTHORIZATION": "Bearer good"}, "token_missing"),
            ({"token": 42}, {"HTTP_AUTHORIZATION": "Bearer good"}, "token_malformed"),
            ({"token": None}, {}, "token_malformed"),
            ("T1", {}, "token_malformed"),
            (["T1"], {}, "token_malformed"),
            (None, {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz", "HTTP_COOKIE": f"{COOKIE}=S"},
             "token_malformed"),
            (None, {"HTTP_AUTHORIZATION": "Bearer "}, "token_missing"),
            (None, {"HTTP_COOKIE": f"{COOKIE}="}, "token_missing"),
            ({"token": "T1"}, {"QUERY_STRING": "EIO=4&token=T9"}, "token_malformed"),
            (None, {"QUERY_STRING": "access_token=T9&transport=polling"}, "token_malformed"),
        ],
    )  # fmt: skip
    def test_refusals(self, auth: Any, environ: dict[str, str], code: str) -> None:
        with pytest.raises(AuthenticationError) as caught:
            credential(auth, environ)
        assert caught.value.code == code

    def test_query_token_only_when_insecurely_allowed(self) -> None:
        environ = {"QUERY_STRING": "EIO=4&token=T9"}
        assert credential(None, environ, allow_query=True) == ("query", "T9")
        assert credential({"token": "T1"}, environ, allow_query=True) == ("auth", "T1")

    def test_repr_never_shows_the_secret(self) -> None:
        found = find_credential({"token": "secret-T"}, {}, cookie_name=COOKIE, allow_query=False)
        assert "secret-T" not in repr(found)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("https://chat.acme.example", True),
        ("HTTPS://CHAT.ACME.EXAMPLE", True),
        ("https://portal.acme.example", True),
        ("https://chat.acme.example:8443", False),
        ("http://chat.acme.example", False),
        ("https://evil.example", False),
        ("https://chat.acme.example.evil.example", False),
        ("https://evil-chat.acme.example", False),  # sibling subdomain
        ("null", False),
        ("", False),
    ],
)
def test_origins(origin: str | None, allowed: bool) -> None:
    policy = OriginPolicy("https://chat.acme.example/app", ("https://portal.acme.example",))
    assert policy.allows(origin) is allowed


def test_star_allows_every_origin() -> None:
    assert OriginPolicy("https://a.example", ("*",)).allows("https://anything.example")


class TestBuckets:
    def test_burst_then_rate(self) -> None:
        clock = FakeClock()
        bucket = TokenBucket.full(BucketSettings(rate=2, burst=3), clock())
        assert [bucket.take(clock()) for _ in range(4)] == [True, True, True, False]
        clock.advance(0.5)
        assert bucket.take(clock())
        assert not bucket.take(clock())
        clock.advance(100)
        assert [bucket.take(clock()) for _ in range(4)] == [True, True, True, False]

    def test_limiter_keys_are_independent_and_bounded(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(BucketSettings(rate=1, burst=1), clock, max_keys=100)
        assert limiter.take("10.0.0.1")
        assert not limiter.take("10.0.0.1")
        assert limiter.take("10.0.0.2")
        assert not limiter.has_token("10.0.0.1")
        assert limiter.has_token("10.0.0.3")
        for i in range(1000):
            limiter.take(f"flood-{i}")
        assert len(limiter) == 100


def test_scheduler_pops_in_order_and_compacts() -> None:
    scheduler = Scheduler()
    for when, key in [(5.0, "c"), (1.0, "a"), (3.0, "b"), (9.0, "d")]:
        scheduler.add(when, "expire", key)
    assert scheduler.next_deadline() == 1.0
    assert [d.key for d in scheduler.pop_due(5.0)] == ["a", "b", "c"]
    scheduler.add(7.0, "warn", "e")
    scheduler.compact(lambda due: due.key != "d")
    assert [d.key for d in scheduler.pop_due(100.0)] == ["e"]
    assert len(scheduler) == 0


def test_scheduler_drops_stale_entries_at_its_head() -> None:
    scheduler = Scheduler()
    for when, key in [(1.0, "stale"), (2.0, "live"), (3.0, "stale too")]:
        scheduler.add(when, "unauthenticated", key)
    scheduler.drop_stale(lambda due: due.key == "live")
    assert scheduler.next_deadline() == 2.0
    assert len(scheduler) == 2  # only the head is examined: O(stale entries at the head)
