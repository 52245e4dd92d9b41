"""The wire: everything that knows Engine.IO, the WebSocket handshake or a dependency's
private code (uvicorn, websockets, python-engineio, python-socketio).

Every override of upstream code is listed in ``gates.py`` (the upstream piece it
replaces, the versions it was verified against, the fingerprint of that code, its
upstream report in docs/upstream/) and falls back to the stock upstream class outside
its verified range or with ``server.transport = "stock"``. Outside this package ssoio
uses its dependencies' public APIs only (tests/transport/test_layout.py).

Arrows point down: this package imports ``ssoio.errors``, ``ssoio.config`` and
``ssoio.addresses`` only, and calls the application above it (the gateway) through
``ports.SocketApp``, the way python-socketio calls an application's handlers.

* ``edge``, ``protocols``: the HTTP edge's limits, uvicorn's HTTP and WebSocket protocols;
* ``environ``, ``engine``, ``guard``: python-engineio's request translation and sessions,
  and the Engine.IO checks in front of it (ASGI middleware);
* ``server``, ``manager``: python-socketio's server and client managers;
* ``gates``, ``paths``: the override table and the transport assembled from it.
"""
