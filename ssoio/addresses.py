"""Client addresses as ssoio's per-address limits and caps count them.

An IPv4 address counts as itself; an IPv6 address as its /64 (RFC 6177 §2, RFC 7136: an
end site gets a /64 at least and its hosts pick their interface identifiers freely, so
counted address by address one host would have 2^64 budgets); an IPv4-mapped IPv6
address as its IPv4 address (RFC 4291 §2.5.5.2). One function for every limit (the HTTP
edge's connection caps, the login rate, the Engine.IO session cap, the connect and
failed-authentication buckets), so no limit can be dodged by spelling an address another
way.
"""

from __future__ import annotations

import functools
import ipaddress

__all__ = ["client_key", "network_key"]


@functools.lru_cache(maxsize=4096)  # parsed three times per connect otherwise
def network_key(host: str | None) -> str | None:
    """The key ``host`` is counted under; None when it is no IP address."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(address), 64), strict=False))


def client_key(host: str | None) -> str:
    """``network_key``, or for a peer without an IP address (a Unix socket, a test
    transport) the name it has, at most 64 characters; "-" for none."""
    key = network_key(host)
    if key is not None:
        return key
    return (host or "-")[:64]
