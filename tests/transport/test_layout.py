"""The transport package's two rules (DESIGN.md), read from the source with ``ast``:

* outside ``ssoio/transport/``, no module imports a private name of uvicorn, websockets,
  python-engineio or python-socketio (a module or attribute starting with ``_``), nor
  subclasses one of their classes overriding a ``_``-method;
* the transport package sits below everything but ``ssoio.errors``, ``ssoio.config`` and
  ``ssoio.addresses``: it never imports ``ssoio.realtime``, ``ssoio.web``,
  ``ssoio.cluster``, ``ssoio.app`` (or anything else above it), and calls up through
  ``ssoio.transport.ports`` only.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ssoio"
TRANSPORT = PACKAGE / "transport"
WIRE = frozenset({"uvicorn", "websockets", "engineio", "socketio"})
# (what the transport package may import from ssoio: tests/test_layers.py)


def _modules_outside_transport() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if not path.is_relative_to(TRANSPORT):
            yield path


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not _dunder(part) for part in dotted.split("."))


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _imports(tree: ast.AST) -> Iterator[tuple[int, str, str | None, str]]:
    """(line, module, imported name or None, local name) of every import."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None, alias.asname or alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                yield node.lineno, node.module, alias.name, alias.asname or alias.name


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def private_uses(path: Path) -> list[str]:
    """Every private name of a wire dependency ``path`` imports, reaches or overrides."""
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else Path(path.name)
    found: list[str] = []
    bound: dict[str, str] = {}  # local name -> the wire dependency's dotted name
    for line, module, name, local in _imports(tree):
        if module.split(".")[0] not in WIRE:
            continue
        full = f"{module}.{name}" if name else module
        if _private(full):
            found.append(f"{where}:{line}: imports {full}")
        bound[local] = full if name else local
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            dotted = _dotted(node)
            root = (dotted or "").split(".")[0]
            if dotted and root in bound and not _dunder(node.attr):
                found.append(f"{where}:{node.lineno}: uses {bound[root]}{dotted[len(root) :]}")
    return found + _overrides(path, where)


def _overrides(path: Path, where: Path) -> list[str]:
    """Methods named ``_...`` that classes of ``path`` (or their mixins) define over a wire
    dependency's: read from the imported classes' MRO (mixins included)."""
    spec = importlib.util.spec_from_file_location(f"_layout_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    if path.is_relative_to(PACKAGE):
        module = importlib.import_module(
            ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        )
    else:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    found = []
    for cls in vars(module).values():
        if not isinstance(cls, type) or cls.__module__ != module.__name__:
            continue
        mro = cls.__mro__
        for index, own in enumerate(mro):
            if _is_wire(own):
                continue
            for name in vars(own):
                if not name.startswith("_") or _dunder(name):
                    continue
                upstream = [
                    base for base in mro[index + 1 :] if _is_wire(base) and name in vars(base)
                ]
                if upstream:
                    base = upstream[0]
                    found.append(
                        f"{where}: {cls.__name__} ({own.__name__}.{name}) overrides "
                        f"{base.__module__}.{base.__qualname__}.{name}"
                    )
    return found


def _is_wire(cls: type) -> bool:
    return cls.__module__.split(".")[0] in WIRE


def test_no_private_dependency_code_outside_the_transport_package() -> None:
    offenders = [use for path in _modules_outside_transport() for use in private_uses(path)]
    assert not offenders, "private code of a wire dependency outside ssoio/transport/:\n" + (
        "\n".join(offenders)
    )


def test_the_scan_finds_each_kind_of_private_use(tmp_path: Path) -> None:
    """The scan itself: a private module, a private attribute, an override."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import socketio\n"
        "from uvicorn._types import WebSocketScope\n"
        "from engineio import async_socket\n"
        "x = async_socket.AsyncSocket._websocket_handler\n"
        "class S(socketio.AsyncServer):\n"
        "    async def _handle_event(self): ...\n"
        "    async def _mine(self): ...\n"
    )
    found = private_uses(sample)
    assert sorted(f.split(": ", 1)[1] for f in found) == [
        "S (S._handle_event) overrides socketio.async_server.AsyncServer._handle_event",
        "imports uvicorn._types.WebSocketScope",
        "uses engineio.async_socket.AsyncSocket._websocket_handler",
    ]


def test_the_gateway_is_the_transport_s_application() -> None:
    """The port is what SocketServer calls: every name it uses of ``self.gateway``."""
    from ssoio.transport.ports import SocketApp

    used = set()
    for path in (TRANSPORT / "server.py", TRANSPORT / "stock.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _dotted(node.value) == "self.gateway":
                used.add(node.attr)
    declared = {name for name in vars(SocketApp) if not name.startswith("_")}
    assert used <= declared, f"SocketServer uses {used - declared}, not in ports.SocketApp"
    from ssoio.realtime.gateway import Gateway

    assert all(hasattr(Gateway, name) or name == "origins" for name in declared)
