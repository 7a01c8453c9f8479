"""The in-process sandbox behind `reconcile --sandbox`: fast clock, persisted data, signed requests."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from reconciler.cps.auth import EdgeGridAuth
from reconciler.errors import ConfigError
from reconciler.sandbox.local import DEFAULT_SPEED, SPEED_ENV, LocalSandbox, open_local_sandbox
from reconciler.sandbox.media import media_type as V
from tests.sandbox.helpers import dv_body

pytestmark = pytest.mark.anyio


def client(sandbox: LocalSandbox, secret: str | None = None) -> httpx.AsyncClient:
    creds = sandbox.credentials
    if secret is not None:
        creds = type(creds)(host=creds.host, client_token=creds.client_token, client_secret=secret,
                            access_token=creds.access_token)
    return httpx.AsyncClient(transport=sandbox.transport, base_url=sandbox.base_url, auth=EdgeGridAuth(creds))


async def test_data_and_credentials_persist_between_runs(tmp_path: Path) -> None:
    first = open_local_sandbox(tmp_path, speed=0)
    async with client(first) as c:
        created = await c.post("/cps/v2/enrollments", params={"contractId": "1-LOCAL"}, content=json.dumps(dv_body()),
                               headers={"Accept": V("enrollment-status.v1"), "Content-Type": V("enrollment.v12")})
    assert created.status_code == 202
    first.advance(600)
    first.close()
    second = open_local_sandbox(tmp_path, speed=0)
    assert second.credentials == first.credentials and second.base_url == first.base_url
    async with client(second) as c:
        listed = await c.get("/cps/v2/enrollments", params={"contractId": "1-LOCAL"},
                             headers={"Accept": V("enrollments.v12")})
    assert [e["location"] for e in listed.json()["enrollments"]] == [created.json()["enrollment"]]
    assert (tmp_path / ".edgerc").stat().st_mode & 0o077 == 0


async def test_requests_are_still_signature_checked(tmp_path: Path) -> None:
    sandbox = open_local_sandbox(tmp_path)
    async with client(sandbox, secret="bm9wZQ==") as c:
        denied = await c.get("/cps/v2/enrollments", params={"contractId": "1-LOCAL"},
                             headers={"Accept": V("enrollments.v12")})
    assert denied.status_code == 401


def test_speed_defaults_to_fast_and_the_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SPEED_ENV, raising=False)
    assert open_local_sandbox(tmp_path / "a").app.runtime.clock.speed == DEFAULT_SPEED == 1000.0
    monkeypatch.setenv(SPEED_ENV, "60")
    assert open_local_sandbox(tmp_path / "b").app.runtime.clock.speed == 60.0
    assert open_local_sandbox(tmp_path / "c", speed=2).app.runtime.clock.speed == 2.0
    for bad in ("fast", "-1"):
        monkeypatch.setenv(SPEED_ENV, bad)
        with pytest.raises(ConfigError, match=SPEED_ENV):
            open_local_sandbox(tmp_path / "d")


def test_repr_names_no_secret(tmp_path: Path) -> None:
    sandbox = open_local_sandbox(tmp_path)
    shown = repr(sandbox) + repr(sandbox.credentials) + repr(sandbox.app.runtime)
    assert sandbox.credentials.client_secret not in shown and sandbox.credentials.client_token not in shown
