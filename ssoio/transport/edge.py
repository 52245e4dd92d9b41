"""Bounds on the HTTP edge, below every route: what one request and one address may hold.

``ssoio.transport.protocols.HttpProtocol`` applies them to each TCP connection:

* the request head (RFC 9112 §2-5): request line, each header line, number of headers and
  all of it together, counted as the bytes arrive (httptools, llhttp, keeps no limit of
  its own: a client could send headers until the node ran out of memory). Over a limit:
  414 (RFC 9110 §15.5.15) or 431 (RFC 6585 §5), then the connection is closed;
* the request body: 413 (RFC 9110 §15.5.14) once it is declared or grows over the limit;
* read deadlines against slow clients ("slowloris"): the whole head within
  ``header_timeout_s`` of the connection opening (or of the previous answer, on a
  keep-alive connection), the whole body within ``body_timeout_s`` of its head. Late:
  408 (RFC 9110 §15.5.9) and the connection is closed;
* open TCP connections per client address (``ConnectionLedger``): IPv4 addresses one by
  one, IPv6 by /64 (RFC 6177: one site's allocation, each of its hosts may take any
  address of it). Over the cap the connection is closed at once. Trusted proxies are not
  capped: every client behind them shares their address.
"""

from __future__ import annotations

import http
import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ssoio.addresses import network_key
from ssoio.config.server import ServerSettings

__all__ = ["ConnectionLedger", "HttpLimits", "Lease", "refusal"]

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The limits of one listener, in bytes and seconds (``[server]`` keys)."""

    request_line: int = 8192
    header_line: int = 32768
    head: int = 65536
    headers: int = 100
    body: int = 1024 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 20.0

    @classmethod
    def of(cls, settings: ServerSettings, *, body_at_least: int = 0) -> HttpLimits:
        """``settings``' limits; the body limit raised to ``body_at_least`` (Engine.IO's
        own bound on a long-polling POST, which its transport guard enforces)."""
        return cls(
            request_line=settings.max_request_line_bytes,
            header_line=settings.max_header_line_bytes,
            head=settings.max_header_bytes,
            headers=settings.max_headers,
            body=max(settings.max_body_bytes, body_at_least),
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
        )


class Lease:
    """One open connection counted in a ``ConnectionLedger``; released once."""

    __slots__ = ("_in_head", "_key", "_ledger")

    def __init__(self, ledger: ConnectionLedger | None, key: str) -> None:
        self._ledger = ledger
        self._key = key
        self._in_head = False

    def begin_head(self) -> bool:
        """The connection started sending a request head; False when its address has
        ``partial_limit`` heads in progress already (the caller closes the connection)."""
        if self._ledger is None or self._in_head:
            return True
        self._in_head = self._ledger.begin_head(self._key)
        return self._in_head

    def end_head(self) -> None:
        if self._in_head and self._ledger is not None:
            self._in_head = False
            self._ledger.end_head(self._key)

    def release(self) -> None:
        self.end_head()
        ledger, self._ledger = self._ledger, None
        if ledger is not None:
            ledger.release(self._key)


_UNCOUNTED = Lease(None, "")


class ConnectionLedger:
    """Open TCP connections per client address, at most ``limit`` each; of them, at most
    ``partial_limit`` in the middle of a request head.

    A client's head arrives in one read or a few, in milliseconds: the heads in progress
    from one address, even an office's NAT address, are few. A slow client holds up to
    ``max_header_bytes`` per connection until the header deadline; the second cap bounds
    what one address can hold that way (256 x 64 KiB: 16 MiB, where 4,000 x 64 KiB would
    be 256 MiB).

    An address over a cap is reported once (``observe("http.connections.refused")``, an
    audit line and a metric), when its first connection is refused, and again only after
    it went under half of its caps: a client retrying in a loop writes one line, not one
    per attempt.
    """

    def __init__(
        self,
        limit: int,
        exempt: tuple[str, ...] = (),
        observe: Callable[..., None] | None = None,
        partial_limit: int | None = None,
    ) -> None:
        self.limit = limit
        self.partial_limit = partial_limit if partial_limit is not None else limit
        self.exempt: tuple[Network, ...] = tuple(
            ipaddress.ip_network(value, strict=False) for value in exempt
        )
        self.observe = observe
        self.open: dict[str, int] = {}
        self.heads: dict[str, int] = {}
        self._reported: set[str] = set()

    def admit(self, host: str | None) -> Lease | None:
        """A lease for a new connection from ``host``, or None when its address is at
        its cap (the caller closes the connection)."""
        key = network_key(host)
        if key is None or self._exempt(host):
            return _UNCOUNTED
        count = self.open.get(key, 0)
        if count >= self.limit:
            self._refused(key, "connections", self.limit)
            return None
        self.open[key] = count + 1
        return Lease(self, key)

    def release(self, key: str) -> None:
        count = self.open.pop(key, 0) - 1
        if count > 0:
            self.open[key] = count
        self._settle(key)

    def begin_head(self, key: str) -> bool:
        count = self.heads.get(key, 0)
        if count >= self.partial_limit:
            self._refused(key, "partial_heads", self.partial_limit)
            return False
        self.heads[key] = count + 1
        return True

    def end_head(self, key: str) -> None:
        count = self.heads.pop(key, 0) - 1
        if count > 0:
            self.heads[key] = count
        self._settle(key)

    def _settle(self, key: str) -> None:
        # reported again once under half of each cap: an address holding its cap, one
        # connection closing and another refused, does not write a line each time
        if (
            key in self._reported
            and 2 * self.open.get(key, 0) < self.limit
            and (2 * self.heads.get(key, 0) < self.partial_limit)
        ):
            self._reported.discard(key)

    def _exempt(self, host: str | None) -> bool:
        if not self.exempt:
            return False
        address = ipaddress.ip_address(host or "")
        return any(address in network for network in self.exempt)

    def _refused(self, key: str, kind: str, limit: int) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        if self.observe is not None:
            self.observe("http.connections.refused", ip=key, over=kind, limit=limit)
        else:
            log.warning("http.connections.refused over=%s limit=%d", kind, limit)


def refusal(
    status: http.HTTPStatus, reason: str, default_headers: list[tuple[bytes, bytes]]
) -> bytes:
    """A complete answer closing the connection: plain text as websockets' refusals
    (``Request Header Fields Too Large: too many headers``); 413 as ssoio's other 413s,
    ``{"ok": false, "error": {"code": "payload_too_large", ...}}`` (DESIGN.md)."""
    if status == http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        error: dict[str, Any] = {"code": "payload_too_large", "message": reason}
        body = json.dumps({"ok": False, "error": error}).encode()
        kind = b"application/json"
    else:
        body = f"{status.phrase}: {reason}\n".encode()
        kind = b"text/plain; charset=utf-8"
    lines = [f"HTTP/1.1 {status.value} {status.phrase}".encode()]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [b"content-type: " + kind, b"content-length: " + str(len(body)).encode(),
              b"cache-control: no-store", b"connection: close", b"", body]  # fmt: skip
    return b"\r\n".join(lines)
