"""Metrics fed by audit events: refusals by limit name and key kind (issue #20)."""

from __future__ import annotations

from ssoio.metrics import Metrics


def test_limit_refusals_are_counted_by_limit_and_key_kind() -> None:
    metrics = Metrics(())
    metrics.observe("auth.connect.refused", {"code": "rate_limited", "limit": "sockets_per_user",
                                             "key_kind": "user"})  # fmt: skip
    metrics.observe("auth.connect.refused", {"code": "rate_limited", "limit": "sockets_per_user",
                                             "key_kind": "user"})  # fmt: skip
    metrics.observe("auth.session.refused", {"code": "rate_limited", "limit": "handshakes",
                                             "key_kind": "address"})  # fmt: skip
    metrics.observe("auth.connect.refused", {"code": "signature_invalid"})
    text = metrics.render().decode()
    assert 'ssoio_limit_refusals_total{key_kind="user",limit="sockets_per_user"} 2.0' in text
    assert 'ssoio_limit_refusals_total{key_kind="address",limit="handshakes"} 1.0' in text
    assert 'ssoio_rate_limited_total{limit="connect"} 2.0' in text


def test_recoveries_are_counted_by_result_and_reason_with_events_replayed() -> None:
    metrics = Metrics(())
    metrics.observe("recovery.attempted", {"sub": "alice"})
    metrics.observe("recovery.succeeded", {"sub": "alice", "replayed": 20})
    metrics.observe("recovery.refused", {"reason": "identity_mismatch"})
    text = metrics.render().decode()
    assert 'ssoio_recoveries_total{reason="",result="attempted"} 1.0' in text
    assert 'ssoio_recoveries_total{reason="identity_mismatch",result="refused"} 1.0' in text
    assert "ssoio_recovery_replayed_events_total 20.0" in text
