"""ssoio on the wire: conformance to the official Engine.IO v4 and Socket.IO v5 protocol
test suites (``socketio/engine.io-protocol`` and ``socketio/socket.io-protocol``, folder
``test-suite/``), run against ssoio's full stack under uvicorn."""
