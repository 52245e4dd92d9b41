"""The direction of imports between ssoio's packages (DESIGN.md: arrows point down).

Each top-level package or module of ``ssoio/`` (a "unit") may import only the units
listed for it below; every import counts, those under ``TYPE_CHECKING`` and inside
functions included. A new unit needs its own line here: where it sits is a decision.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ssoio"

_LEAVES = frozenset({"errors", "clock", "addresses", "audit", "metrics", "process"})
_BASE = frozenset({"errors", "clock"})

ALLOWED: dict[str, frozenset[str]] = {
    **{leaf: frozenset() for leaf in _LEAVES},
    # config knows nothing of policy: the languages it cannot parse are checked by
    # functions its caller passes (config.checks)
    "config": _BASE,
    # policy knows claims (a mapping and an issuer name), not verifier types
    "policy": _BASE | {"config"},
    "oidc": _BASE | {"config", "audit"},
    "devidp": _BASE | {"config", "oidc"},
    # Everything that knows Engine.IO, the WebSocket handshake or a dependency's private
    # code (issue #17): below realtime, which it calls through a protocol of its own.
    # the one translation of errors to HTTP answers, for web and transport alike
    "responses": frozenset({"errors"}),
    "transport": _BASE | {"config", "addresses", "responses"},
    # realtime reaches the cluster through its own protocol (realtime.seams.Cluster)
    "realtime": _BASE | {"config", "addresses", "audit", "policy", "oidc", "transport"},
    # the cluster does not know the web package's sessions (cluster.state.StoredSession)
    "cluster": _BASE | {"config", "audit", "policy", "realtime", "transport"},
    "web": _BASE
    | {
        "config",
        "addresses",
        "audit",
        "metrics",
        "policy",
        "oidc",
        "realtime",
        "transport",
        "responses",
    },
    # the composition: what puts the packages together
    "settings": frozenset({"config", "policy"}),
    "app": _LEAVES
    | {
        "config",
        "policy",
        "oidc",
        "realtime",
        "cluster",
        "web",
        "settings",
        "transport",
        "responses",
    },
    "demo": _BASE | {"config", "devidp", "settings", "app"},
    "serving": _LEAVES | {"config", "transport", "web", "settings", "app", "demo"},
    # ssoio doctor: configuration, provider and token checks, for operators (the CLI)
    "doctor": _BASE | {"config", "policy", "oidc"},
    "cli": _LEAVES
    | {"config", "policy", "oidc", "devidp", "settings", "serving", "app", "demo", "doctor"},
    "__init__": frozenset({"app", "config", "errors", "oidc", "policy", "settings"}),
    "__main__": frozenset({"cli"}),
}


def unit_of(path: Path, root: Path) -> str:
    """``ssoio/realtime/gateway.py`` -> ``realtime``; ``ssoio/app.py`` -> ``app``."""
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def imported_units(path: Path, root: Path) -> Iterator[tuple[int, str, str]]:
    """(line, module imported, ssoio unit) of every import of ssoio in ``path``."""
    package = ".".join(("ssoio", *path.relative_to(root).parent.parts))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [_absolute(node, package)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "ssoio" and len(parts) > 1:
                yield node.lineno, name, parts[1]
            elif parts == ["ssoio"] and isinstance(node, ast.ImportFrom):
                for alias in node.names:  # from ssoio import config
                    yield node.lineno, f"ssoio.{alias.name}", alias.name


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def violations(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        unit = unit_of(path, root)
        allowed = ALLOWED.get(unit)
        if allowed is None:
            found.append(f"{path.relative_to(root.parent)}: unit {unit!r} has no rule here")
            continue
        for line, name, target in imported_units(path, root):
            if target != unit and target not in allowed:
                where = f"{path.relative_to(root.parent)}:{line}"
                found.append(f"{where} imports {name} ({unit} may import {sorted(allowed)})")
    return found


def test_imports_point_down() -> None:
    problems = violations()
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "offending"),
    [
        ("from ssoio.policy.patterns import parse_pattern\n", "ssoio.policy.patterns"),
        ("import ssoio.web.sessions\n", "ssoio.web.sessions"),
        ("from ssoio import policy\n", "ssoio.policy"),
        ("if TYPE_CHECKING:\n    from ssoio.cli import main\n", "ssoio.cli"),
        ("def f():\n    from ..app import SsoServer\n", "ssoio.app"),
    ],
)
def test_a_back_edge_is_named(tmp_path: Path, source: str, offending: str) -> None:
    """The check itself: a config module importing upward fails, naming the import."""
    root = tmp_path / "ssoio"
    (root / "config").mkdir(parents=True)
    (root / "config" / "bad.py").write_text(source)
    problems = violations(root)
    assert len(problems) == 1
    assert "ssoio/config/bad.py:" in problems[0]
    assert f"imports {offending} " in problems[0]


def test_every_rule_names_known_units() -> None:
    units = set(ALLOWED)
    for allowed in ALLOWED.values():
        assert allowed <= units, sorted(allowed - units)
