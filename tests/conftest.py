"""Shared fixtures. Each room adds its own below; keep them small and documented."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from reconciler.cps.client import CpsClient
from reconciler.sandbox.testing import SandboxServer
from tests.secretscan import SecretScan


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


@pytest.fixture
def secret_scan() -> Iterator[SecretScan]:
    """Opt-in credential-leak check (tests/secretscan.py): register secrets and artefacts, e.g.
    ``secret_scan.add_secrets(server.credentials); secret_scan.add_path(repo);
    secret_scan.add_text("stderr", run.stderr)``; it asserts at teardown unless ``check()`` ran."""
    scan = SecretScan()
    yield scan
    if scan.secrets and not scan.checked:
        scan.check()
