"""The override table (ssoio/transport/gates.py): fingerprints of the upstream code each
piece was verified against, the version gates with their stock fallbacks, and the
transport each gate assembles."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
from pathlib import Path
from typing import Any

import engineio
import pytest
import socketio

from ssoio.settings import validate_raw
from ssoio.transport import gates
from ssoio.transport.edge import HttpLimits
from ssoio.transport.engine import AddressedEngineServer, EngineServer
from ssoio.transport.gates import PIECES, Selection, select
from ssoio.transport.manager import ClusterManager, FanOut, IndexedRooms, LocalManager, manager_for
from ssoio.transport.paths import socket_server, uvicorn_protocols
from ssoio.transport.protocols import HttpProtocol
from ssoio.transport.server import SocketServer
from ssoio.transport.stock import StockSocketServer
from ssoio.transport.websocket import WebSocketProtocol
from tests.transport.test_layout import TRANSPORT, private_uses

ROOT = Path(__file__).resolve().parents[2]
VERIFIED = {"uvicorn": "0.54.0", "websockets": "17.4", "python-engineio": "4.15.1",
            "python-socketio": "5.18.1"}  # fmt: skip
ENTRIES = [(piece.name, entry) for piece in PIECES for entry in piece.upstream]


def _resolve(name: str) -> Any:
    module, _, qualname = name.partition(":")
    value: Any = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def _installed(piece: gates.Piece) -> str:
    return ", ".join(f"{v.distribution} {gates.installed_version(v.distribution)}"
                     for v in piece.verified)  # fmt: skip


@pytest.mark.parametrize(("piece", "entry"), ENTRIES, ids=[e.name for _, e in ENTRIES])
def test_upstream_code_is_the_code_each_piece_was_verified_against(
    piece: str, entry: gates.Upstream
) -> None:
    """When ``make lock`` brings a version whose code changed, this names the piece to
    re-verify (ssoio/transport/gates.py's docstring says how)."""
    found = next(p for p in PIECES if p.name == piece)
    source = inspect.getsource(_resolve(entry.name))
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == entry.sha256, (
        f"re-verify piece {piece} ({found.ssoio}): {entry.name} changed upstream "
        f"(installed: {_installed(found)}); sha256 {digest}"
    )


def test_every_private_override_in_the_transport_package_is_fingerprinted() -> None:
    listed = {entry.name.replace(":", ".") for _, entry in ENTRIES}
    overrides = [
        use.rsplit(" overrides ", 1)[1]
        for path in sorted(TRANSPORT.glob("*.py"))
        for use in private_uses(path)
        if " overrides " in use
    ]
    assert overrides, "the scan found no override at all"
    missing = sorted(set(overrides) - listed)
    assert not missing, f"overridden but not fingerprinted in gates.py: {missing}"


def test_every_piece_names_existing_reports_linked_from_its_code() -> None:
    for piece in PIECES:
        module = piece.ssoio.split(" ")[0].rsplit(".", 1)[0]
        source = inspect.getsource(importlib.import_module(module))
        for report in piece.reports:
            assert (ROOT / "docs" / "upstream" / report).is_file(), report
            assert report in source, f"{module} does not link docs/upstream/{report}"


def test_verified_versions_are_what_constraints_pins() -> None:
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    for piece in PIECES:
        for verified in piece.verified:
            assert verified.admits(pins[verified.distribution]), (piece.name, verified)


def test_in_range_versions_run_every_ssoio_piece(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "ssoio.transport"):
        selection = select("ssoio", VERIFIED)
    assert selection == Selection.everything()
    assert not caplog.records


def test_a_version_outside_its_range_runs_the_stock_class_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "ssoio.transport"):
        selection = select("ssoio", {**VERIFIED, "uvicorn": "0.55.0"})
    assert selection.stock == ("uvicorn.http", "uvicorn.websocket")
    assert selection.uses("engineio.socket")
    pieces = [r.getMessage() for r in caplog.records if "transport.piece.stock" in r.getMessage()]
    assert len(pieces) == 2  # one per piece, each naming it and the versions
    assert (
        "piece=uvicorn.http installed=uvicorn 0.55.0 verified=uvicorn >=0.53.0,<0.55" in (pieces[0])
    )
    assert "piece=uvicorn.websocket" in pieces[1]
    loud = [r.getMessage() for r in caplog.records if r.getMessage().startswith("TRANSPORT")]
    assert len(loud) == 1
    assert "read deadlines" in loud[0]
    assert "last received packet" not in loud[0]  # only what the stock pieces lack


@pytest.mark.parametrize(
    ("distribution", "version", "stock"),
    [
        ("python-socketio", "5.19.0", {"socketio.server", "socketio.rooms", "socketio.cluster",
                                       "socketio.fanout", "engineio.socket", "engineio.environ"}),
        ("python-engineio", "4.14.2", {"engineio.socket", "engineio.environ"}),
        ("websockets", "16.0", {"uvicorn.websocket"}),
        ("websockets", None, {"uvicorn.websocket"}),  # not installed
        ("uvicorn", "0.52.9", {"uvicorn.http", "uvicorn.websocket"}),
        ("uvicorn", "0.54.9rc1", set()),  # release numbers only
    ],
)  # fmt: skip
def test_each_distribution_gates_its_pieces(
    distribution: str, version: str | None, stock: set[str]
) -> None:
    assert set(select("ssoio", {**VERIFIED, distribution: version}).stock) == stock


def test_the_stock_setting_turns_every_piece_off_with_one_loud_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "ssoio.transport"):
        selection = select("stock", VERIFIED)
    assert selection.ssoio == frozenset()
    assert [r.getMessage()[:40] for r in caplog.records] == [
        "TRANSPORT: stock path for uvicorn.http, "
    ]
    text = caplog.records[0].getMessage()
    for piece in PIECES:
        for lack in piece.lacks:
            assert lack in text


def test_the_setting_is_validated() -> None:
    def settings(transport: str) -> Any:
        raw = {"issuers": [{"name": "a", "issuer": "https://idp.test", "audiences": ["x"]}],
               "server": {"transport": transport}}  # fmt: skip
        return validate_raw(raw, {})

    assert settings("stock").server.transport == "stock"
    with pytest.raises(Exception, match="transport"):
        settings("fast")


def test_uvicorn_protocols_per_selection() -> None:
    limits = HttpLimits(head=4096)
    ours = uvicorn_protocols(Selection.everything(), limits, None)
    assert issubclass(ours["http"], HttpProtocol)
    assert ours["ws"] is WebSocketProtocol
    stock = uvicorn_protocols(Selection(frozenset()), limits, None)
    # the head's size stays bounded on the stock path: h11 has the limit httptools lacks
    assert stock == {"http": "h11", "h11_max_incomplete_event_size": 4096,
                     "ws": "websockets-sansio"}  # fmt: skip


def test_managers_per_selection() -> None:
    everything, nothing = Selection.everything(), Selection(frozenset())
    assert type(manager_for(everything)) is LocalManager
    assert type(manager_for(nothing)) is socketio.AsyncManager
    url = "redis://127.0.0.1:1"  # never connected
    assert type(manager_for(everything, url)) is ClusterManager
    assert type(manager_for(nothing, url)) is socketio.AsyncRedisManager
    rooms_only = Selection(everything.ssoio - {"socketio.cluster"})
    made = manager_for(rooms_only, url)
    assert isinstance(made, IndexedRooms)
    assert not isinstance(made, ClusterManager)
    assert isinstance(made, FanOut)
    # the Redis manager's own delivery (super().emit in _handle_emit) reaches FanOut
    assert type(made).__mro__.index(FanOut) > type(made).__mro__.index(socketio.AsyncRedisManager)
    without_fanout = Selection(everything.ssoio - {"socketio.fanout"})
    assert not isinstance(manager_for(without_fanout), FanOut)
    assert isinstance(manager_for(without_fanout), IndexedRooms)


class _App:
    origins: Any = None


def _server(selection: Selection) -> Any:
    raw = {"issuers": [{"name": "a", "issuer": "https://idp.test", "audiences": ["x"]}]}
    return socket_server(validate_raw(raw, {}), lambda _server: _App(), selection)


def test_socket_servers_per_selection() -> None:
    ours = _server(Selection.everything())
    assert type(ours) is SocketServer
    assert type(ours.eio) is EngineServer
    assert type(ours.manager) is LocalManager
    stock = _server(Selection(frozenset()))
    assert type(stock) is StockSocketServer
    assert type(stock.eio) is engineio.AsyncServer
    assert type(stock.manager) is socketio.AsyncManager
    no_engine = Selection(Selection.everything().ssoio - {"engineio.socket"})
    assert type(_server(no_engine).eio) is AddressedEngineServer
