"""One dev IdP for the module's tests that neither rotate keys nor need a clean slate."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.devidp.harness import Running, running_idp


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_idp() -> AsyncIterator[Running]:
    async with running_idp() as running:
        yield running
