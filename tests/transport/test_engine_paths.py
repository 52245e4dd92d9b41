"""Which paths the Engine.IO guards cover (``serves_engine``)."""

from __future__ import annotations

import pytest
from engineio.async_drivers import asgi

from ssoio.transport.environ import serves_engine

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
