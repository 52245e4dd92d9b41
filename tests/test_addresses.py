"""Client addresses as every per-address limit counts them (``ssoio.addresses``)."""

from __future__ import annotations

import pytest

from ssoio.addresses import client_key, network_key

KEYS: list[tuple[str | None, str | None, str]] = [
    # (host, network_key, client_key)
    ("192.0.2.7", "192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64", "2001:db8:1:2::/64"),  # RFC 6177: a site's /64
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::1", "2001:db8:1:2::/64", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64", "2001:db8:1:3::/64"),
    ("::1", "::/64", "::/64"),
    ("fe80::1%eth0", "fe80::/64", "fe80::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7", "192.0.2.7"),  # RFC 4291 §2.5.5.2: the IPv4 client
    ("::c000:207", "::/64", "::/64"),  # IPv4-compatible (deprecated) is IPv6: never 192.0.2.7
    ("", None, "-"),
    (None, None, "-"),
    ("testclient", None, "testclient"),
    ("unix:/run/ssoio.sock", None, "unix:/run/ssoio.sock"),
    ("x" * 100, None, "x" * 64),
]


@pytest.mark.parametrize(("host", "network", "client"), KEYS)
def test_addresses_count_as_ipv4_address_or_ipv6_64(
    host: str | None, network: str | None, client: str
) -> None:
    assert network_key(host) == network
    assert client_key(host) == client
