"""Tests against real third-party peers (node oidc-provider, socket.io-client, ...)."""
