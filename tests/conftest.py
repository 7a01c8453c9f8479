"""Shared fixtures. Each room adds its own below; keep them small and documented."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from reconciler.cps.client import CpsClient
from reconciler.sandbox.testing import SandboxServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sandbox_server() -> Iterator[SandboxServer]:
    """A fresh sandbox over real HTTPS on 127.0.0.1 (free port, empty temporary data dir, speed 1).

    Move workflows with ``sandbox_server.advance(seconds)``; inject faults with ``set_faults``.
    """
    with SandboxServer() as server:
        yield server


@pytest.fixture
async def sandbox_client(sandbox_server: Any) -> AsyncIterator[CpsClient]:
    """An open ``CpsClient`` talking to ``sandbox_server`` over HTTPS, trusting the sandbox's CA."""
    async with CpsClient(sandbox_server.credentials, base_url=sandbox_server.base_url,
                         verify=sandbox_server.ca_bundle) as client:
        yield client
