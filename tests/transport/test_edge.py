"""The HTTP edge's pure parts: address keys, the connection ledger, the answers, the
configuration checks (the live behaviour: tests/security/test_http_edge.py)."""

from __future__ import annotations

import http
import json
from typing import Any

import pytest

from ssoio.addresses import network_key
from ssoio.errors import ConfigError
from ssoio.transport.edge import ConnectionLedger, refusal
from tests.security.harness import settings_from


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("192.0.2.1", "192.0.2.1", True),
        ("192.0.2.1", "192.0.2.2", False),
        # RFC 6177: a /64 is one site's; its hosts may take any address in it
        ("2001:db8:0:1::1", "2001:db8:0:1:ffff:ffff:ffff:ffff", True),
        ("2001:db8:0:1::1", "2001:db8:0:2::1", False),
        # RFC 4291 §2.5.5.2: an IPv4-mapped address is its IPv4 address
        ("::ffff:192.0.2.1", "192.0.2.1", True),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.2", False),
        # an IPv6 /64 never shares a key with an IPv4 address
        ("::c000:201", "192.0.2.1", False),
        ("0:0:0:1::", "0.0.0.1", False),
    ],
)
def test_addresses_are_counted_by_ipv4_address_and_ipv6_64(
    one: str, other: str, same: bool
) -> None:
    assert (network_key(one) == network_key(other)) is same


@pytest.mark.parametrize("host", [None, "", "unix:/run/ssoio.sock", "example.com"])
def test_a_peer_without_an_ip_address_is_not_counted(host: str | None) -> None:
    ledger = ConnectionLedger(1)
    assert all(ledger.admit(host) is not None for _ in range(3))
    assert ledger.open == {}


def test_the_cap_and_its_release() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    ledger = ConnectionLedger(2, observe=lambda event, **fields: events.append((event, fields)))
    first, second = ledger.admit("2001:db8::1"), ledger.admit("2001:db8::2")
    assert first is not None
    assert second is not None
    assert ledger.admit("2001:db8::3") is None  # same /64
    assert ledger.admit("2001:db8::4") is None
    assert ledger.admit("192.0.2.1") is not None  # another address
    # one report per address reaching its cap, not one per refusal
    refused = ("http.connections.refused", {"ip": "2001:db8::/64", "over": "connections",
                                            "limit": 2})  # fmt: skip
    assert events == [refused]
    first.release()
    first.release()  # a lease is released once
    assert ledger.open[network_key("2001:db8::1") or ""] == 1
    third = ledger.admit("2001:db8::5")
    assert third is not None
    assert ledger.admit("2001:db8::6") is None
    assert len(events) == 1  # at the cap, one closing and another refused: no new line
    second.release()
    third.release()
    assert network_key("2001:db8::1") not in ledger.open
    assert ledger.admit("2001:db8::7") is not None
    assert ledger.admit("2001:db8::8") is not None
    assert ledger.admit("2001:db8::9") is None
    assert events == [refused, refused]  # it went under half its cap in between


def test_heads_in_progress_per_address_are_capped() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    ledger = ConnectionLedger(
        100, partial_limit=2, observe=lambda event, **fields: events.append((event, fields))
    )
    leases = [ledger.admit("192.0.2.1") for _ in range(4)]
    assert all(lease is not None for lease in leases)
    first, second, third, fourth = (lease for lease in leases if lease is not None)
    assert first.begin_head()
    assert first.begin_head()  # the same head
    assert second.begin_head()
    assert not third.begin_head()
    assert events == [("http.connections.refused",
                       {"ip": "192.0.2.1", "over": "partial_heads", "limit": 2})]  # fmt: skip
    first.end_head()
    assert fourth.begin_head()
    second.release()  # a connection lost in the middle of its head
    fourth.end_head()
    assert ledger.heads == {}
    assert ConnectionLedger(1, partial_limit=1).admit("192.0.2.1") is not None


def test_trusted_proxies_are_not_capped() -> None:
    ledger = ConnectionLedger(1, exempt=("10.0.0.0/8", "2001:db8::/32"))
    assert all(ledger.admit("10.1.2.3") is not None for _ in range(5))
    assert all(ledger.admit("2001:db8:1:2::3") is not None for _ in range(5))
    assert ledger.open == {}
    assert ledger.admit("192.0.2.1") is not None
    assert ledger.admit("192.0.2.1") is None


def test_refusals_are_complete_closing_answers() -> None:
    date = [(b"date", b"Thu, 01 Jan 2026 00:00:00 GMT")]
    text = refusal(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many headers", date)
    head, body = text.split(b"\r\n\r\n")
    assert head.split(b"\r\n")[:2] == [b"HTTP/1.1 431 Request Header Fields Too Large",
                                       b"date: Thu, 01 Jan 2026 00:00:00 GMT"]  # fmt: skip
    assert b"connection: close" in head
    assert f"content-length: {len(body)}".encode() in head
    assert body == b"Request Header Fields Too Large: too many headers\n"
    too_large = refusal(http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "over 1024 bytes", [])
    answer = json.loads(too_large.split(b"\r\n\r\n")[1])
    assert answer == {"ok": False, "error": {"code": "payload_too_large",
                                             "message": "over 1024 bytes"}}  # fmt: skip


def problems_of(
    server: dict[str, Any] | None = None, tokens: dict[str, Any] | None = None
) -> dict[str, str]:
    try:
        settings_from(server=server or {}, tokens=tokens or {})
    except ConfigError as refused:
        return {problem.path: problem.message for problem in refused.problems}
    return {}


def test_the_header_line_admits_a_token_of_tokens_max_bytes() -> None:
    """An Authorization header with a token of tokens.max_bytes (RFC 6750 §2.1) must fit
    in one header line, and the head must hold a request line and such a header."""
    assert problems_of() == {}
    assert problems_of(tokens={"max_bytes": 65536}) == {
        "server.max_header_line_bytes": "must be at least tokens.max_bytes + 1024 (66560)"
    }
    assert problems_of(server={"max_header_line_bytes": 60000}) == {
        "server.max_header_bytes":
        "must be at least max_request_line_bytes + max_header_line_bytes (68192)"
    }  # fmt: skip
