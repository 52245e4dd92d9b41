"""Fixtures of the hostile-input suite: a live node per module, reset before every case."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.security.harness import Node, running_node
from tests.support.forge import SigningKey


@pytest.fixture(scope="module")
async def node(rsa_key: SigningKey) -> AsyncIterator[Node]:
    """The example configuration on a live node, shared by a module (modules may override)."""
    async with running_node(key=rsa_key) as running:
        yield running


@pytest.fixture
async def live(node: Node) -> Node:
    """The module's node, with the last case's clients, logs and counters cleared."""
    await node.begin_case()
    return node
