"""The public API is small, explicit and sorted."""

from __future__ import annotations

import ssoio


def test_all_is_sorted_and_complete() -> None:
    assert ssoio.__all__ == sorted(ssoio.__all__)
    public = {name for name in dir(ssoio) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(ssoio, name)).__name__ == "module"}
    assert public - modules == set(ssoio.__all__)
