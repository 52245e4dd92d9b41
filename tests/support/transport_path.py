"""Which transport path the suite runs on: ``SSOIO_TRANSPORT=stock`` runs every node the
harnesses start (tests/security/harness.py ``running_node``, tests/interop's
``running_ssoio`` and cluster nodes, tests/transport's ``node``) with
``server.transport = "stock"``: uvicorn's, python-engineio's and python-socketio's own
classes (ssoio/transport/gates.py). ``make test`` runs tests/security, tests/transport
and tests/interop a second time that way; tests marked ``ssoio_transport`` (a protection
only ssoio's classes have) are deselected on that leg (tests/conftest.py)."""

from __future__ import annotations

import os
from typing import Literal

from ssoio.config import Settings

__all__ = ["on_path", "transport_path"]


def transport_path() -> Literal["ssoio", "stock"]:
    value = os.environ.get("SSOIO_TRANSPORT", "ssoio") or "ssoio"
    if value not in ("ssoio", "stock"):
        raise ValueError(f"SSOIO_TRANSPORT must be ssoio or stock, not {value!r}")
    return "stock" if value == "stock" else "ssoio"


def on_path(settings: Settings) -> Settings:
    """``settings`` on the suite's transport path (unchanged on the default path, and when
    a test chose a path itself)."""
    if transport_path() == "ssoio" or settings.server.transport == "stock":
        return settings
    server = settings.server.model_copy(update={"transport": "stock"})
    return settings.model_copy(update={"server": server})
