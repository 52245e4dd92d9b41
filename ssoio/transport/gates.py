"""Every replacement of a dependency's code, in one table: what it replaces, the versions it
was verified against, the fingerprint of the upstream source it was written for, and what
the stock upstream class lacks when ssoio falls back to it.

At start-up (``select``), each piece whose distributions are all inside their verified
ranges runs ssoio's class; a piece with a distribution outside its range runs the stock
upstream class instead, with one warning naming the piece and the versions.
``server.transport = "stock"`` turns every piece to the stock path. Whenever a piece runs
stock, one loud warning lists the protections the stock path lacks (``Piece.lacks``);
the protections that public seams can keep stay on both paths (``STOCK_KEEPS``).

``tests/transport/test_gates.py`` hashes ``inspect.getsource`` of every ``Upstream`` entry
and compares it with ``sha256`` here: when ``make lock`` brings a version whose code
changed, ``make test`` names the piece to re-verify. Re-verifying means: read the upstream
change, adapt ssoio's class, run the tests of the piece (``tests``), then update the
fingerprint and, if needed, the range (docs/operating.md, "Dependency updates").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Literal

__all__ = [
    "PIECES",
    "STOCK_KEEPS",
    "Piece",
    "Selection",
    "Upstream",
    "Verified",
    "installed_version",
    "select",
]

log = logging.getLogger(__name__)

TransportMode = Literal["ssoio", "stock"]


@dataclass(frozen=True, slots=True)
class Verified:
    """A distribution and the versions a piece was verified against: ``low <= v < below``
    (release numbers only: 0.54.1rc1 counts as 0.54.1)."""

    distribution: str
    low: str
    below: str

    def admits(self, version: str | None) -> bool:
        release = _release(version) if version is not None else None
        low, below = _release(self.low), _release(self.below)
        return None not in (release, low, below) and low <= release < below  # type: ignore[operator]

    def __str__(self) -> str:
        return f"{self.distribution} >={self.low},<{self.below}"


@dataclass(frozen=True, slots=True)
class Upstream:
    """An upstream function or class ssoio overrides, copies or mirrors: ``module:qualname``
    and the sha256 of its ``inspect.getsource`` in the verified version."""

    name: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Piece:
    """One replacement of upstream code, and its stock fallback."""

    name: str
    ssoio: str  # ssoio's class or function
    stock: str  # what runs instead on the stock path
    verified: tuple[Verified, ...]
    upstream: tuple[Upstream, ...]
    reports: tuple[str, ...]  # docs/upstream/*.md
    lacks: tuple[str, ...]  # what the stock path cannot keep through public seams
    tests: str  # where the piece's behaviour is tested


UVICORN = Verified("uvicorn", "0.53.0", "0.55")
WEBSOCKETS = Verified("websockets", "17.0", "18")
ENGINEIO = Verified("python-engineio", "4.15.0", "4.16")
SOCKETIO = Verified("python-socketio", "5.18.0", "5.19")

_HTTP = "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol"
_WS = "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol"
_SOCKET = "engineio.async_socket:AsyncSocket"
_EIO = "engineio.async_server:AsyncServer"
_SIO = "socketio.async_server:AsyncServer"

# python-socketio's packet encoding, which ssoio.transport.packets writes for room events
# (piece socketio.fanout) and acks (piece socketio.server)
_PACKET = (
    Upstream(
        "socketio.packet:Packet.encode",
        "513c45be75181da2e2b99a71f0876080a515f8dc0dfd99fd691ea2879637e8ea",
    ),
    Upstream(
        "socketio.packet:Packet.__init__",
        "5fe2fa797e082c1dcecce5ef96b84380ef8267559aa649c0792df016afc08a21",
    ),
)

PIECES: tuple[Piece, ...] = (
    Piece(
        name="uvicorn.http",
        ssoio="ssoio.transport.protocols.HttpProtocol",
        stock='uvicorn\'s h11 protocol ("h11"), h11_max_incomplete_event_size = '
        "server.max_header_bytes",
        verified=(UVICORN,),
        upstream=(
            Upstream(
                f"{_HTTP}.__init__",
                "4f08999410347141468656d82e71ffebccb59f09e41909a3753a810eeed685fa",
            ),
            Upstream(
                f"{_HTTP}.connection_made",
                "6efb565ff3d36b916c29bd42330a2b99b601b48932389e396e5ac53dbef6b91c",
            ),
            Upstream(
                f"{_HTTP}.connection_lost",
                "c91a4c9bf2e29c554a97418b5f3064e97f6e0ceaba3b90fc35a3460076c705ab",
            ),
            Upstream(
                f"{_HTTP}.data_received",
                "010a7ae59a5d3b1a5e7326ce246878568629d126a076d8af5ba10cab040fae43",
            ),
            Upstream(
                f"{_HTTP}.handle_websocket_upgrade",
                "179c4f769386ab8909f529350d350eba701170fdc37373a9046658c007221ff4",
            ),
            Upstream(
                f"{_HTTP}.on_message_begin",
                "96d377fdc7c2baef943c2bd245003abc53566ddb35777e0f4c7bc754198b5457",
            ),
            Upstream(
                f"{_HTTP}.on_url",
                "37be44e962b04ca87f76428ff8d7a3306ab601ffd5793d185e87c2295f0c6b6e",
            ),
            Upstream(
                f"{_HTTP}.on_header",
                "65d62c044f61fdbd354dcb3401aa590789259bfbdbc1c07512150ec924258cd6",
            ),
            Upstream(
                f"{_HTTP}.on_headers_complete",
                "1ea8589acfad92d8ff9182775f337d98fc469e0fa39642a83195fca920f5ca96",
            ),
            Upstream(
                f"{_HTTP}.on_body",
                "dba9c32aeba35b6ae10722f86232d44d93fda42d97711244eeaa51c0a1f3e1c9",
            ),
            Upstream(
                f"{_HTTP}.on_message_complete",
                "1fbad42dc31fc01fd4106a9885b2a2e0f6ce8d38241a3df0f615c6a8663493e0",
            ),
            Upstream(
                f"{_HTTP}.on_response_complete",
                "64e254f28e389e7614f2c828176d639174e66aa9d814a4b06624ec86ec0a5b95",
            ),
        ),
        reports=("uvicorn-httptools-request-head-limits.md",),
        lacks=(
            "request-line, header-line and header-count limits (h11 bounds the head as a "
            "whole: server.max_header_bytes)",
            "read deadlines for request heads and bodies (server.header_timeout_s, "
            "body_timeout_s): a slow client holds its connection",
            "open connections and partial heads per client address "
            "(server.max_connections_per_address, max_partial_heads_per_address)",
            "server.max_body_bytes at the HTTP edge (Engine.IO's long-polling POSTs stay "
            "bounded by TransportGuard)",
        ),
        tests="tests/transport/test_protocols.py, tests/transport/test_edge.py, "
        "tests/security/test_http_edge.py",
    ),
    Piece(
        name="uvicorn.websocket",
        ssoio="ssoio.transport.websocket.WebSocketProtocol (with Handshake, _UpgradedProtocol)",
        stock='uvicorn\'s websockets-sansio protocol ("websockets-sansio"), ws_max_size kept',
        verified=(UVICORN, WEBSOCKETS),
        upstream=(
            Upstream(
                f"{_WS}.__init__",
                "631dcd744eab875ffd404bbda22f9dd0db25b90e2585748710bce88357dce74b",
            ),
            Upstream(
                f"{_WS}.connection_made",
                "f533ec93747c2cbf613a6693fb84366e2fd36475c94eddacb14dd35937d893dd",
            ),
            Upstream(
                f"{_WS}.connection_lost",
                "dd116afc4d8034e11baebc28faf53f4f0f15181c4ea1a0e49cc9fdf45056cc97",
            ),
            Upstream(
                f"{_WS}.data_received",
                "c89d394077d8841d253e469eb47bfd9db0172cd7eebe38edf5211c8e312885d0",
            ),
            Upstream(
                f"{_WS}.handle_connect",
                "fc648c2161ff8e135e839d563d00499e26c6a00083466ce95aa27428d37af30a",
            ),
            Upstream(
                f"{_WS}.send", "d4919ed760ce9f7be8574989b91ed67448f210ff9cc114f38d286487ec1ddfc8"
            ),
            Upstream(
                "websockets.server:ServerProtocol.accept",
                "f2f96c48162dbfdace797e0083969cb379da5bcca9398bbaad2d83bdf9f81a8f",
            ),
            Upstream(
                "websockets.server:ServerProtocol.process_request",
                "2611abb84de75f09f617aeada6e4a022dd76eef18ba5e4f75b8c40749d5a7803",
            ),
            Upstream(
                "websockets.server:ServerProtocol.parse",
                "8c4d10340de4d32f573bd1c7c0e0b40374579dda3173abd82aedf3f6ffa07ea4",
            ),
            Upstream(
                "websockets.server:ServerProtocol.send_response",
                "0676fec30e39473dff2d0e49f3b4adc496bef349e1164f87463acedc9a5c1ed2",
            ),
            Upstream(
                "websockets.protocol:Protocol.parse",
                "45aaf900644b63c46eee7cd7e28c53182cf53acac614aa93ed5a6a090fe95cc0",
            ),
            Upstream(
                "websockets.http11:Request.parse",
                "fd00e2611149536e29de86ac3e474bcaf0a626fe2e85bc28cb467497d9240cac",
            ),
            Upstream(
                "websockets.utils:accept_key",
                "a9d69843a840252f40aa279803d0deecbf497ae5cc49b7700741ca05f7a2f2b5",
            ),
        ),
        reports=(
            "uvicorn-ws-handshake-refusal-unanswered.md",
            "uvicorn-ws-handshake-objects-kept.md",
            "websockets-max-line-length-parameter.md",
        ),
        lacks=(
            "an answer to every WebSocket handshake refused for its size (uvicorn leaves the "
            "client waiting with its connection open)",
            "the handshake request (its Authorization header) and answer dropped once "
            "answered (uvicorn keeps them for the connection's life)",
        ),
        tests="tests/transport/test_protocols.py, tests/security/test_transport.py",
    ),
    Piece(
        name="engineio.environ",
        ssoio="ssoio.transport.environ.translate_request (installed by EngineServer)",
        stock="python-engineio's translate_request; REMOTE_ADDR still corrected from the "
        "ASGI scope (ssoio.transport.server.client_address) on both paths",
        verified=(ENGINEIO, SOCKETIO),
        upstream=(
            Upstream(
                "engineio.async_drivers.asgi:translate_request",
                "39e74733f1fe46aa20e9ba2b651834a108bced1acee44c5a76927173dd7b09ff",
            ),
            Upstream(
                "engineio.base_server:BaseServer.__init__",
                "a06b17502fbd9646e3f29ec85f1e53dbbcdc9ceecce6c2969eb83e4ef1726ee2",
            ),
            Upstream(
                f"{_SIO}._engineio_server_class",
                "199c42bf149247e0325bd5fb6c8bcc6c3703c5576704530fa92b383e0f777dd4",
            ),
        ),
        reports=("python-engineio-remote-addr.md",),
        lacks=(),  # memory only: a class per request, ~3 KiB per connection
        tests="tests/transport/test_engine_paths.py, tests/security/test_guards.py",
    ),
    Piece(
        name="engineio.socket",
        ssoio="ssoio.transport.engine.EngineServer, EngineSocket, _WebSocket",
        stock="python-engineio's AsyncServer and AsyncSocket",
        verified=(ENGINEIO, SOCKETIO),
        upstream=(
            Upstream(
                f"{_SOCKET}.poll",
                "826f58a9f3606db208e5d1266f075ad655b6eeda47b0a5616748624899ca5954",
            ),
            Upstream(
                f"{_SOCKET}.schedule_ping",
                "fe316639159cd70d34cdb911a055fc1a0056ff15615b8460a1ab6593c95e9372",
            ),
            Upstream(
                f"{_SOCKET}.check_ping_timeout",
                "77616d5ca7809257d5d1866f271e7cc3e114663cfe2772cafda63a7393c880d0",
            ),
            Upstream(
                f"{_SOCKET}.close",
                "faa2e93902543244d2a1b772cdf4074d1615532e98fa6ca896739ca54ad64e76",
            ),
            Upstream(
                f"{_SOCKET}._upgrade_websocket",
                "820b83efe96adb98ee63eef1096dd403c6690bf80aa00c49f3985afd30a4bf95",
            ),
            Upstream(
                f"{_SOCKET}._websocket_handler",
                "27f120df4d717a24478b7b0f7389ce19eea8a881dd07e2c81fb1cf2493e006a5",
            ),
            Upstream(
                f"{_EIO}.create_queue",
                "5ff5673a0c0176813f16592f7a50a08b19fa1c017e36789f5662cfac366f58e2",
            ),
            Upstream(
                f"{_EIO}._service_task",
                "b6358bda51d0b34bb5fbf0e99842af2e0879f6ae1125e12a1fb99e5158194d9d",
            ),
            Upstream(
                f"{_EIO}._trigger_event",
                "4a09b6e47eb665325458df5d59b61d13547449eedb0ef25ce0b634005dae633b",
            ),
            Upstream(
                "engineio.async_drivers.asgi:WebSocket.__init__",
                "04b1e5346e13f177c8e87fce4c3e10d31a9bf2bbc79805eb9782f288fc2fe7ef",
            ),
            Upstream(
                "engineio.async_drivers.asgi:WebSocket.__call__",
                "abbf7a49b2256d3716476bc994bd1cec7b5e060c01692044959a3558af5efff1",
            ),
            Upstream(
                "engineio.async_drivers.asgi:WebSocket.wait",
                "0346a1c9ebdafdffea28b0ab1a933e3af38d9ca32dd9fce72f5751c6e9aed1e8",
            ),
            Upstream(
                "engineio.async_drivers.asgi:WebSocket.send",
                "0af97629973f3c51cbc0d689a829018e9125a45239134e5f76ea8ae03e9353f6",
            ),
            Upstream(
                "engineio.async_drivers.asgi:WebSocket.close",
                "75c3d8a915e5430c65a31298924e263df0bd71558c6b5d248c71a43663d43c49",
            ),
            Upstream(
                f"{_SIO}._engineio_server_class",
                "199c42bf149247e0325bd5fb6c8bcc6c3703c5576704530fa92b383e0f777dd4",
            ),
        ),
        reports=(
            "python-engineio-last-packet-kept.md",
            "python-engineio-ping-timeout-close-dropped.md",
            "python-engineio-client-close-websocket-open.md",
            "python-engineio-protocol-conformance.md",
        ),
        lacks=(
            "ssoio's lighter Engine.IO sessions (no task per wait: memory and CPU per "
            "connection, benchmarks/)",
            "the last received packet (a CONNECT and its access token) dropped once "
            "handled (python-engineio keeps it until the next one)",
            "CLOSE sent on a ping timeout, and the transport ended with the session "
            "(python-engineio drops the CLOSE)",
            "a pending long-poll answered NOOP when its session ends (python-engineio "
            "answers it 400)",
            "a slow reader's transport freed at once at the backlog limit",
            "Engine.IO v4 conformance: pingInterval advertised in milliseconds "
            "(python-engineio sends 0 below one second), a second concurrent poll closing "
            "the session, no stray NOOP over the WebSocket after an upgrade",
        ),
        tests="tests/transport/test_engine.py, tests/security/test_transport.py",
    ),
    Piece(
        name="socketio.server",
        ssoio="ssoio.transport.server.SocketServer",
        stock="ssoio.transport.stock.StockSocketServer (public seams: handlers for "
        'namespace "*", a catch-all event handler, ConnectionRefusedError, '
        "python-engineio's connect/disconnect handlers)",
        verified=(SOCKETIO,),
        upstream=(
            Upstream(
                f"{_SIO}._engineio_server_class",
                "199c42bf149247e0325bd5fb6c8bcc6c3703c5576704530fa92b383e0f777dd4",
            ),
            Upstream(
                f"{_SIO}._handle_eio_connect",
                "76704886d944a7e648d24c37acb921c9866a58a6c1086f2cd9917ec0386e3517",
            ),
            Upstream(
                f"{_SIO}._handle_eio_disconnect",
                "9344593148b66fd9b4e7614e7a1427f641c74c8cbf1d85263c0ca70d8bfeace5",
            ),
            Upstream(
                f"{_SIO}._handle_connect",
                "c97c480cf777de36bd6348c6335ac61b324e6ed16372660100d10223faf79a74",
            ),
            Upstream(
                f"{_SIO}._send_eio_packet",
                "64cf72a2ab7d75b1d4cc1469416cde6ad7e949f74693924381dc05560e9ae929",
            ),
            Upstream(
                f"{_SIO}._handle_eio_message",
                "bef50fc0e1635921c922995dba721d05d1c5ccc95d6a6b7647a1db75c4e6032e",
            ),
            Upstream(
                f"{_SIO}._handle_event",
                "65178105ef8b593d1ebb63610cbabab0c29654cee50fd669ba0a66590f2e1f54",
            ),
            Upstream(
                f"{_SIO}._send_packet",
                "a00022b42c1c29e908fd601c32aa1854aeaf2f131b3acc12461f6030e1ab9e9b",
            ),
            *_PACKET,
        ),
        reports=(
            "python-socketio-reserved-event-names.md",
            "python-socketio-binary-attachments-unbounded.md",
            "python-socketio-connect-handler-exception.md",
        ),
        lacks=(
            "binary attachments never buffered (python-socketio buffers every announced "
            "attachment of a connected client; the assembled event is still refused)",
            "events over realtime.max_payload_bytes refused before they are decoded "
            "(stock: after, bounded by the transport limit)",
            "malformed Socket.IO packets closing their session with one log line "
            "(python-socketio logs a stack trace)",
            "the backlog limit (realtime.max_backlog_packets): a client that stops reading "
            "grows its queue until the ping timeout",
            "a second CONNECT to the same namespace answered namespace_forbidden "
            '(python-socketio: "Unable to connect")',
            "connection state recovery ([recovery]): the CONNECT answer's pid and the hold "
            "of live events while missed ones are replayed (recovery.enabled is refused "
            'with server.transport = "stock"; with python-socketio outside its verified '
            "range recovery is off and clients reconnect with recovered = false)",
        ),
        tests="tests/security/test_transport.py, tests/transport/test_socketio_conformance.py",
    ),
    Piece(
        name="socketio.rooms",
        ssoio="ssoio.transport.manager.IndexedRooms (LocalManager, ClusterManager)",
        stock="python-socketio's AsyncManager / AsyncRedisManager",
        verified=(SOCKETIO,),
        upstream=(
            Upstream(
                "socketio.async_manager:AsyncManager.basic_disconnect",
                "2933b50bc4b2ea7b4367a84e05c2e22c52fed98b00afc3b88d06d61ab9fb9aa1",
            ),
            Upstream(
                "socketio.base_manager:BaseManager.basic_enter_room",
                "3f509586d2d7f47ec92cc5113a80f5302ca1d82fb3689ee530edd3aa9ad6a1a3",
            ),
            Upstream(
                "socketio.base_manager:BaseManager.basic_leave_room",
                "e27f3eea06d1c6a6ea295e99f62477330af4779e1f1853753e94f309ef0e74f2",
            ),
            Upstream(
                "socketio.base_manager:BaseManager.basic_close_room",
                "1d81a80fe1cac5a575e1017a1fffb40d8b0e9febc02e112b25d7e76a2caaa62e",
            ),
        ),
        reports=(),  # performance only: a disconnect walks every room of the namespace
        lacks=(),
        tests="tests/transport/test_manager.py",
    ),
    Piece(
        name="socketio.fanout",
        ssoio="ssoio.transport.manager.FanOut (LocalManager, ClusterManager)",
        stock="python-socketio's AsyncManager.emit (a task per recipient)",
        verified=(SOCKETIO,),
        upstream=(
            Upstream(
                "socketio.async_manager:AsyncManager.emit",
                "01ccd5b82b4f955e4f2e4d07b5fbf09cacef868e9f61bc2abe56d92118a5f3ac",
            ),
            *_PACKET,
        ),
        reports=("python-socketio-fan-out-task-per-recipient.md",),
        lacks=(),
        tests="tests/transport/test_manager.py, tests/transport/test_socketio_conformance.py",
    ),
    Piece(
        name="socketio.cluster",
        ssoio="ssoio.transport.manager.PublishFirst (ClusterManager)",
        stock="python-socketio's AsyncRedisManager (delivers here, then publishes)",
        verified=(SOCKETIO,),
        upstream=(
            Upstream(
                "socketio.async_redis_manager:AsyncRedisManager._publish",
                "033e4da7cc8768b45283323b44859bc6102b7cd9e9d1022c42d84cf0f2a617b1",
            ),
            Upstream(
                "socketio.async_pubsub_manager:AsyncPubSubManager._handle_emit",
                "4284671be955f644db57572ca19e27c79b0444f89efd4583dac5654650f42c78",
            ),
        ),
        reports=(),  # performance only: other nodes wait for this node's fan-out
        lacks=(),
        tests="tests/transport/test_manager.py, tests/interop/test_cluster.py",
    ),
)

# Kept on the stock path through public seams (docs/security.md, "Transport paths").
STOCK_KEEPS: tuple[str, ...] = (
    "the request head's total size (uvicorn's h11 protocol, h11_max_incomplete_event_size)",
    "the WebSocket frame limit (uvicorn's ws_max_size: 1009 before a large frame is read)",
    "TransportGuard and OriginGuard (ASGI middleware): JSONP refused, long-polling POST "
    "limits, malformed frames, either side's CLOSE ends the WebSocket, Origin allow-list",
    "the client address from the ASGI scope (REMOTE_ADDR corrected): per-IP limits",
    "unauthenticated sessions counted per address (python-engineio's connect handler)",
    "every connect refusal with its wire code (ConnectionRefusedError), "
    "namespace_forbidden, reserved event names refused (unknown_event), binary events "
    "refused, payload_too_large",
)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which pieces run ssoio's class (the others run the stock upstream class)."""

    ssoio: frozenset[str]

    def uses(self, piece: str) -> bool:
        """Whether ``piece`` (a ``Piece.name``) runs ssoio's class."""
        if piece not in _NAMES:
            raise KeyError(piece)
        return piece in self.ssoio

    @property
    def stock(self) -> tuple[str, ...]:
        return tuple(p.name for p in PIECES if p.name not in self.ssoio)

    @classmethod
    def everything(cls) -> Selection:
        return cls(frozenset(_NAMES))


_NAMES = frozenset(piece.name for piece in PIECES)


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def select(
    mode: TransportMode = "ssoio",
    versions: Mapping[str, str | None] | Callable[[str], str | None] = installed_version,
    logger: logging.Logger = log,
) -> Selection:
    """The pieces that run ssoio's class: every piece whose distributions are within their
    verified ranges (none when ``mode`` is "stock"). Warns once per piece that falls back
    for its versions, and once, loudly, with what the stock path lacks."""
    version_of = versions.get if isinstance(versions, Mapping) else versions
    chosen: set[str] = set()
    for piece in PIECES:
        if mode == "stock":
            continue
        outside = [v for v in piece.verified if not v.admits(version_of(v.distribution))]
        if not outside:
            chosen.add(piece.name)
            continue
        found = ", ".join(f"{v.distribution} {version_of(v.distribution)}" for v in outside)
        ranges = ", ".join(str(v) for v in outside)
        logger.warning(
            "transport.piece.stock piece=%s installed=%s verified=%s: the stock upstream "
            "class runs instead of %s until the piece is re-verified (ssoio/transport/gates.py)",
            piece.name, found, ranges, piece.ssoio,
        )  # fmt: skip
    selection = Selection(frozenset(chosen))
    lacks = [item for piece in PIECES if piece.name not in chosen for item in piece.lacks]
    if selection.stock:
        logger.warning(
            "TRANSPORT: stock path for %s (server.transport=%s); it lacks: %s. See "
            "docs/security.md, \"Transport paths\".",
            ", ".join(selection.stock), mode, "; ".join(lacks) or "nothing but performance",
        )  # fmt: skip
    return selection


def _release(version: str) -> tuple[int, ...] | None:
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    if match is None:
        return None
    numbers = tuple(int(part) for part in match.group().split("."))
    return numbers + (0,) * (3 - len(numbers)) if len(numbers) < 3 else numbers
