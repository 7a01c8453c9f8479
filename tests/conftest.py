"""Shared fixtures. Each room adds its own below; keep them small and documented."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
