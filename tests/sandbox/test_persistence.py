"""The data file: atomic replacement, format checks, nothing left behind."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from reconciler.sandbox.app import SandboxApp, create_app
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.media import media_type as V
from reconciler.sandbox.persistence import DATA_FILE, DataStore, SandboxDataError
from tests.sandbox.helpers import dv_body, signed_client


def test_nothing_saved_yet_loads_none(tmp_path: Path) -> None:
    assert DataStore(tmp_path / "fresh").load() is None


def test_round_trip_and_no_temporary_files_left(tmp_path: Path) -> None:
    store = DataStore(tmp_path / "data")
    store.save({"engine": {"enrollments": {"10000": {"cn": "a.example.com"}}}, "counters": {"requests": 3}})
    store.save({"engine": {"enrollments": {}}, "counters": {"requests": 4}})
    assert store.load() == {"format": 1, "engine": {"enrollments": {}}, "counters": {"requests": 4}}
    assert sorted(os.listdir(tmp_path / "data")) == [DATA_FILE]


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    store = DataStore(tmp_path)
    store.save({"engine": {"n": 1}})
    with pytest.raises(TypeError):
        store.save({"engine": {"n": object()}})  # not JSON-serialisable: fails before touching the file
    assert store.load() == {"format": 1, "engine": {"n": 1}}
    assert sorted(os.listdir(tmp_path)) == [DATA_FILE]


def test_replace_is_atomic_for_a_concurrent_reader(tmp_path: Path) -> None:
    # The old inode stays readable while the new file takes its name.
    store = DataStore(tmp_path)
    store.save({"engine": {"n": 1}})
    with store.path.open(encoding="utf-8") as old:
        store.save({"engine": {"n": 2}})
        assert json.load(old)["engine"] == {"n": 1}
    assert store.load()["engine"] == {"n": 2}  # type: ignore[index]


@pytest.mark.parametrize("content", ["{not json", '{"format": 99}', "[]"])
def test_corrupt_or_foreign_files_are_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / DATA_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(SandboxDataError, match=DATA_FILE):
        DataStore(tmp_path).load()


# -- what the app writes, and when ----------------------------------------------------------------


def _create(app: SandboxApp, cn: str) -> int:
    async def go() -> int:
        async with signed_client(app) as client:
            response = await client.post("/cps/v2/enrollments", params={"contractId": "1-P"},
                                         content=json.dumps(dv_body(cn, [cn])),
                                         headers={"Accept": V("enrollment-status.v1"),
                                                  "Content-Type": V("enrollment.v12")})
            return response.status_code

    return asyncio.run(go())


def _saved_cns(path: Path) -> list[str]:
    data = json.loads((path / DATA_FILE).read_text(encoding="utf-8"))
    return sorted(r["body"]["csr"]["cn"] for r in data["engine"]["enrollments"].values())


def test_every_write_is_saved_by_default(tmp_path: Path) -> None:
    app = create_app(SandboxConfig(data_dir=tmp_path, engine=EngineConfig(create_throttle_seconds=0)))
    assert _create(app, "a.example.com") == 202
    assert _saved_cns(tmp_path) == ["a.example.com"]  # no shutdown needed


def test_persist_interval_coalesces_writes_until_due_or_shutdown(tmp_path: Path) -> None:
    config = SandboxConfig(data_dir=tmp_path, engine=EngineConfig(create_throttle_seconds=0), persist_interval=3600)
    app = create_app(config)
    writes = app.runtime.counters["writes"]
    assert _create(app, "a.example.com") == 202 and _create(app, "b.example.com") == 202
    assert app.runtime.counters["writes"] == writes and _saved_cns(tmp_path) == []
    app.runtime.advance(1)  # an advance always saves
    assert _saved_cns(tmp_path) == ["a.example.com", "b.example.com"]
    assert _create(app, "c.example.com") == 202

    async def lifespan() -> None:  # what uvicorn does at shutdown
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(lifespan())
    assert _saved_cns(tmp_path) == ["a.example.com", "b.example.com", "c.example.com"]


def _list(app: SandboxApp) -> int:
    async def go() -> int:
        async with signed_client(app) as client:
            response = await client.get("/cps/v2/enrollments", params={"contractId": "1-P"},
                                        headers={"Accept": V("enrollments.v11")})
            return response.status_code

    return asyncio.run(go())


@pytest.mark.parametrize(("interval", "saved"), [(0.0, True), (3600.0, False)])
def test_reads_save_at_most_every_read_persist_interval(tmp_path: Path, interval: float, saved: bool) -> None:
    # Reads run due transitions, so they save now and then; how often is configurable.
    config = SandboxConfig(data_dir=tmp_path, engine=EngineConfig(create_throttle_seconds=0),
                           read_persist_interval=interval)
    app = create_app(config)
    assert _create(app, "a.example.com") == 202
    writes = app.runtime.counters["writes"]
    assert _list(app) == 200
    assert app.runtime.counters["writes"] == writes + (1 if saved else 0)
