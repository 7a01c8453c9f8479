"""Shared fixtures. Each room adds its own below; keep them small and documented."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from reconciler.cps.client import CpsClient
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from tests.pgserver import PgCluster
from tests.secretscan import SecretScan


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sandbox_server() -> Iterator[SandboxServer]:
    """A fresh sandbox over real HTTPS on 127.0.0.1 (free port, empty temporary data dir, speed 1).

    Move workflows with ``sandbox_server.advance(seconds)``; inject faults with ``set_faults``.
    It trusts DV acknowledgements (``validation_policy="trust-ack"``), said here explicitly: the
    tests on it publish challenges to files no sandbox looks at. Production's request limits and
    create throttle are on. Tests of validation by looking start their own server.
    """
    with SandboxServer(engine=EngineConfig(validation_policy="trust-ack")) as server:
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


# -- PostgreSQL (the postgres state backend) ------------------------------------------------------

@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throw-away PostgreSQL server for the session (tests/pgserver.py). Skipped, loudly, only when
    none can be started outside CI; under CI=true that is a failure."""
    try:
        cluster = PgCluster().__enter__()
    except Exception as exc:  # binaries missing, initdb/pg_ctl failed, psycopg missing
        reason = f"NO POSTGRESQL SERVER: the postgres state backend is NOT TESTED here ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield cluster
    finally:
        cluster.__exit__()


@dataclass(frozen=True)
class PgWorkspace:
    """A fresh workspace in ``pg_cluster``'s database; its DSN is in os.environ[DSN_ENV] for the test."""

    cluster: PgCluster
    name: str
    dsn: str

    @property
    def config(self) -> dict[str, str]:
        """The ``state:`` block of reconcile.yaml for this workspace."""
        return {"backend": "postgres", "workspace": self.name, "dsn_env": DSN_ENV}


DSN_ENV = "RECONCILE_STATE_DSN"


@pytest.fixture
def pg_workspace(pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch) -> PgWorkspace:
    workspace = PgWorkspace(pg_cluster, f"t-{uuid.uuid4().hex[:12]}", pg_cluster.dsn())
    monkeypatch.setenv(DSN_ENV, workspace.dsn)
    return workspace


@pytest.fixture(params=["file", "postgres"])
def state_backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """The ``state:`` block of reconcile.yaml, once per backend (postgres: a fresh workspace, DSN in
    the environment, so that CLI subprocesses inherit it)."""
    if request.param == "file":
        return {"backend": "file"}
    workspace: PgWorkspace = request.getfixturevalue("pg_workspace")
    return workspace.config


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say it at the end, not only in -rs: skipped PostgreSQL tests mean a backend went untested."""
    skipped = terminalreporter.stats.get("skipped", [])
    count = sum(1 for report in skipped if "NO POSTGRESQL SERVER" in str(report.longrepr))
    if count:
        terminalreporter.write_line(f"!!! {count} PostgreSQL state backend test(s) SKIPPED: no PostgreSQL server "
                                    "could be started (install postgresql; under CI=true they fail)", red=True)
