"""Running an ``SsoServer`` under uvicorn, configured as measured in benchmarks/.

* httptools and websockets-sansio, each handshake parsed once
  (``ssoio.transport.protocols``, ``ssoio.transport.websocket``); the legacy websockets
  implementation calls ``inspect.signature()`` per connection (13% of connect CPU here).
  On the stock transport path (``server.transport``, ``ssoio.transport.gates``): uvicorn's
  h11 and websockets-sansio protocols;
* the HTTP edge's bounds on every request and client address (``ssoio.transport.edge``);
* permessage-deflate only when configured: it triples memory per connection;
* raised GC thresholds (``process.tune_garbage_collector``);
* no access log: request lines carry query strings, and a client may put a token there;
* proxy headers only from ``server.trusted_proxies`` (client IPs drive rate limits);
* SIGHUP reloads the configuration; SIGTERM drains (``SsoServer.drain``) then stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from ssoio.app import SsoServer
from ssoio.config.model import Settings
from ssoio.config.operations import LoggingSettings, TlsSettings
from ssoio.errors import ConfigError, Problem
from ssoio.process import tune_garbage_collector
from ssoio.transport.edge import ConnectionLedger, HttpLimits
from ssoio.transport.paths import uvicorn_protocols
from ssoio.web.metrics import metrics_route

__all__ = [
    "configure_logging",
    "quiet_libraries",
    "serve",
    "uvicorn_config",
    "uvicorn_options",
]

log = logging.getLogger("ssoio")


def uvicorn_config(server: SsoServer, host: str, port: int) -> uvicorn.Config:
    """The uvicorn settings ssoio runs with (shared by ``serve`` and the benchmarks)."""
    return uvicorn.Config(server.asgi_app, host=host, port=port, **uvicorn_options(server))


def uvicorn_options(server: SsoServer) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments for ``server``, except app, host and port
    (the test suite runs nodes with them)."""
    settings = server.settings.server
    # a long-polling POST is bounded by Engine.IO's own limit (its transport guard)
    limits = HttpLimits.of(settings, body_at_least=server.sio.eio.max_http_buffer_size)
    ledger = ConnectionLedger(settings.max_connections_per_address, settings.trusted_proxies,
                              server.observe, settings.max_partial_heads_per_address)  # fmt: skip
    return {
        **uvicorn_protocols(server.transport, limits, ledger),
        "ws_per_message_deflate": settings.websocket_compression,
        # uvicorn's default buffers frames of up to 16 MiB before ssoio sees them (10
        # anonymous sockets: +230 MB); larger frames are refused with 1009 as they start
        "ws_max_size": server.sio.eio.max_http_buffer_size,
        "ws_ping_interval": None,  # Engine.IO sends its own heartbeats: one timer, not two
        "lifespan": "on",
        "access_log": False,
        "log_config": None,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies) or None,
        "server_header": False,
        "timeout_graceful_shutdown": int(settings.shutdown_grace_s) + 1,
        **_tls_options(settings.tls),
    }


def _tls_options(tls: TlsSettings) -> dict[str, Any]:
    if not tls.cert_file:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": tls.cert_file,
        "ssl_keyfile": tls.key_file,
        "ssl_keyfile_password": tls.key_password.get_secret_value() or None,
        "ssl_ca_certs": tls.ca_file or None,
        "ssl_ciphers": tls.ciphers,
    }
    if tls.ca_file:
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


# A log line quotes at most this much of a message: python-engineio puts client input
# (a session id of any length) into its messages.
MAX_MESSAGE_CHARS = 2000
# C0 controls, DEL and C1 controls: a newline forges a log line, ESC drives a terminal
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + f"... ({len(message)} chars)"
    return message


def _escape(text: str) -> str:
    """``text`` on one line, control characters written as escapes (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class _JsonFormatter(logging.Formatter):
    """One JSON object per record, per line (JSON escapes control characters)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {"ts": self.formatTime(record), "level": record.levelname.lower(),
                                "logger": record.name}  # fmt: skip
        audit = getattr(record, "audit", None)
        body.update(audit if isinstance(audit, dict) else {"message": _message(record)})
        if record.exc_info and record.exc_info[0] is not None:
            # the type only: a traceback or an exception's text may quote client input
            body["exception"] = record.exc_info[0].__name__
        return json.dumps(body, default=str)


class _TextFormatter(logging.Formatter):
    """``time level logger message``, one line per record: control characters escaped
    and, as in the JSON format, an exception named without its text or traceback (both
    may quote client input; a traceback is a dozen lines per request)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = _message(record)  # an audit record's message is its JSON
        if record.exc_info and record.exc_info[0] is not None:
            text += f" exception={record.exc_info[0].__name__}"
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {text}"
        return _escape(line)


def configure_logging(settings: LoggingSettings | None = None, level: int | None = None) -> None:
    """Log records (audit records included) to stderr or a file, as JSON or text."""
    settings = settings or LoggingSettings()
    if settings.destination == "file":
        handler: logging.Handler = logging.FileHandler(settings.file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if settings.format == "json" else _TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level is not None else settings.level.upper())
    # The audit trail is not diagnostics: logging.level must not silence it (records at
    # INFO would otherwise vanish at "warning"). An explicit `level` (benchmarks) may.
    logging.getLogger("ssoio.audit").setLevel(logging.INFO if level is None else level)
    quiet_libraries()


def quiet_libraries() -> None:
    """Libraries whose chatter can carry secrets: authlib logs PKCE verifiers at DEBUG;
    httpx/httpcore log request lines (an authorization code in a callback URL) and, at
    DEBUG, headers; uvicorn's handshake lines carry query strings; python-engineio and
    python-socketio log every packet at INFO (a CONNECT with its token). ssoio logs what
    matters itself. Every library logs through ssoio's handlers: python-engineio's
    own handler (added when it is given ``logger=False``) is removed."""
    for name in ("authlib", "httpx", "httpcore", "engineio", "socketio"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn logs each WebSocket handshake line, query string included, at INFO (even
    # with the access log off); a client may have put a token there.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    for name in ("engineio.server", "socketio.server", "engineio.client", "socketio.client"):
        library = logging.getLogger(name)
        library.handlers[:] = []
        library.propagate = True


class _Server(uvicorn.Server):
    """uvicorn, draining ssoio before it stops (SIGTERM, SIGINT)."""

    def __init__(self, config: uvicorn.Config, sso: SsoServer) -> None:
        super().__init__(config)
        self.sso = sso

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.sso.drain()
        await super().shutdown(sockets)


def serve(
    settings: Settings, *, host: str | None = None, port: int | None = None,
    config_path: str | None = None,
) -> None:  # fmt: skip
    """Run a node until interrupted."""
    configure_logging(settings.logging)
    tune_garbage_collector()
    # uvicorn handles Ctrl-C (a graceful shutdown, draining ssoio), then raises the SIGINT
    # again for the default handler: the KeyboardInterrupt that follows is the end, not an error
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, host or settings.server.host, port or settings.server.port,
                           config_path))  # fmt: skip


async def _serve(settings: Settings, host: str, port: int, config_path: str | None) -> None:
    sso = SsoServer(settings, config_path=config_path, landing=True)
    servers: list[uvicorn.Server] = [_Server(uvicorn_config(sso, host, port), sso)]
    if settings.metrics.enabled and settings.metrics.port and sso.metrics is not None:
        app = Starlette(routes=[metrics_route(sso.metrics, settings.metrics)])
        metrics = uvicorn.Config(app, host=settings.metrics.host or host,
                                 port=settings.metrics.port, lifespan="off",
                                 access_log=False, log_config=None)  # fmt: skip
        servers.append(uvicorn.Server(metrics))
    if config_path is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _reload_soon, sso)
    scheme = "https" if settings.server.tls.cert_file else "http"
    log.info("ssoio listening on %s://%s:%s (public URL %s)", scheme, host, port,
             settings.server.public_url)  # fmt: skip
    if settings.server.insecure_allow_query_token:
        log.warning("INSECURE: server.insecure_allow_query_token is on")
    await asyncio.gather(*(server.serve() for server in servers))


def run_demo(config: Path, users: Path, host: str, port: int) -> None:
    """``ssoio demo``: everything on one loopback port, until Ctrl-C."""
    from ssoio.demo.app import build_demo, load_demo_settings

    settings = load_demo_settings(config, host, port)
    configure_logging(settings.logging.model_copy(update={"format": "text"}))
    tune_garbage_collector()
    demo = build_demo(settings, users)
    config_ = uvicorn_config(demo.sso, host, port)
    config_.app = demo.app
    # Listening before the lifespan starts: the demo's provider is served by this process,
    # so the first key fetch (at start-up) waits in the backlog instead of failing and
    # logging "cannot be reached" until the back-off's next try.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listening = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigError(
            [Problem("--port", f"cannot listen on {host}:{port}: {exc.strerror}")]
        ) from exc
    print(_DEMO_BANNER.format(url=demo.public_url), flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # after uvicorn's shutdown (see serve)
        uvicorn.Server(config_).run(sockets=[listening])


_DEMO_BANNER = """
  ssoio demo (DEVELOPMENT ONLY) on {url}

  Open {url}/ and sign in as one of the reference users:
    alice  admin, staff  /eng    acme    chat
    bob    staff         /sales  acme    chat
    carol  -             -       globex  chat
    dave   staff         /eng    acme    (no chat)
    erin   -             /sales  acme    chat
  Ctrl-C stops it.
"""


def _reload_soon(sso: SsoServer) -> None:
    async def reload() -> None:
        try:
            await sso.reload_file()
        except ConfigError as refused:
            for problem in refused.problems:
                log.error("config.reload.refused %s", problem)

    task = asyncio.get_running_loop().create_task(reload())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()
