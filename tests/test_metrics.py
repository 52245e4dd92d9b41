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
