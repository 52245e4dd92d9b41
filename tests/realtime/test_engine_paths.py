"""What the per-IP limits count a client address as (``client_key``)."""

from __future__ import annotations

import pytest
from engineio.async_drivers import asgi

from ssoio.realtime.environ import serves_engine
from ssoio.realtime.gateway import client_key

KEYS = [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
    ("::1", "::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("", ""),
    ("testclient", "testclient"),
]


@pytest.mark.parametrize(("ip", "key"), KEYS)
def test_client_key(ip: str, key: str) -> None:
    assert client_key(ip) == key


PATHS = [
    ("/socket.io", True),
    ("/socket.io/", True),
    ("/socket.io//", True),
    ("/socket.io/x/y", True),
    ("/socket.iox", False),
    ("/Socket.io/", False),
    ("/x/socket.io/", False),
    ("/", False),
]


@pytest.mark.parametrize(("path", "served"), PATHS)
def test_serves_engine_matches_python_engineio(path: str, served: bool) -> None:
    """engineio.async_drivers.asgi.ASGIApp adds a trailing slash, then compares: the
    guards must match what it serves, no less."""
    app = asgi.ASGIApp(None, engineio_path="socket.io")  # socketio.ASGIApp's default
    upstream = app._ensure_trailing_slash(path).startswith(app.engineio_path)
    assert serves_engine(path) is served is upstream
