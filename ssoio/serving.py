"""Running an ``SsoServer`` under uvicorn, configured as measured in benchmarks/.

* ``websockets-sansio``: the legacy websockets implementation calls
  ``inspect.signature()`` per connection (13% of connect CPU here);
* permessage-deflate only when configured: it triples memory per connection;
* raised GC thresholds (``process.tune_garbage_collector``);
* no access log: request lines carry query strings, and a client may put a token there;
* no proxy headers until trusted proxies are configured (client IPs drive rate limits).
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from ssoio.app import SsoServer
from ssoio.config.model import Settings
from ssoio.process import tune_garbage_collector

__all__ = ["serve", "uvicorn_config"]


def uvicorn_config(server: SsoServer, host: str, port: int) -> uvicorn.Config:
    """The uvicorn settings ssoio runs with (shared by ``serve`` and the tests)."""
    return uvicorn.Config(
        server.asgi_app,
        host=host,
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=server.settings.server.websocket_compression,
        lifespan="on",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )


def configure_logging(level: int = logging.INFO) -> None:
    """One line per record on stderr; audit records are already JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Run a node until interrupted."""
    configure_logging()
    tune_garbage_collector()
    server = SsoServer(settings)
    config = uvicorn_config(server, host or settings.server.host, port or settings.server.port)
    logging.getLogger("ssoio").info(
        "ssoio listening on http://%s:%s (public URL %s)", config.host, config.port,
        settings.server.public_url,
    )  # fmt: skip
    uvicorn.Server(config).run()
