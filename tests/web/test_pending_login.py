"""The pre-login cookie refusing what is not its own: pure checks (the live behaviour is in
test_login_flood.py and test_login_cookies.py)."""

from __future__ import annotations

from ssoio.web.pending import PendingLogin, PendingLogins
from tests.security.harness import settings_from
from tests.support.clock import FakeClock


def test_pre_login_cookie_round_trip_and_refusals() -> None:
    clock = FakeClock()
    pending = PendingLogins(settings_from(login={"session_secret": "s" * 32}), clock)
    login = PendingLogin.start("/rooms")
    sealed = pending.seal(login)
    assert login.code_verifier not in sealed  # encrypted, not only signed
    assert pending.open(sealed) == login
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    other = PendingLogins(settings_from(login={"session_secret": "t" * 32}), clock)
    assert [pending.open(v) for v in (tampered, "", None, "x" * 5000)] == [None] * 4
    assert other.open(sealed) is None  # another secret
    clock.advance(601)
    assert pending.open(sealed) is None  # older than login.login_timeout_s
    assert "verifier" not in repr(login)
    assert login.code_verifier not in repr(login)
