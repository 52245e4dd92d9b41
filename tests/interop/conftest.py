"""Fixtures that run real third-party peers for the interop tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .provider import NodeProvider, ensure_node_modules, require_tool


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def node_idp() -> AsyncIterator[NodeProvider]:
    """One node oidc-provider for the whole session (default settings: 300 s tokens)."""
    require_tool("node")
    ensure_node_modules()
    provider = await NodeProvider.start()
    try:
        yield provider
    finally:
        await provider.stop()
