"""`reconcile state history|pull|push|migrate|unlock` on both backends, through the CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler.cli.main import cli as reconcile
from reconciler.config import load_config
from reconciler.state import ChangeInFlight, Intent, State, StateEntry
from reconciler.state.backends import open_store
from reconciler.state.layout import Layout
from tests.conftest import PgWorkspace


def _entry(eid: int, cn: str) -> StateEntry:
    return StateEntry(enrollment_id=eid, contract_id="ctr_1-AB123", common_name=cn, spec_hash="h1")


def _repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "reconcile.yaml").write_text(yaml.safe_dump({"state": state}))
    monkeypatch.chdir(repo)
    return repo


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(reconcile, ["--no-color", *args], input=input)


def _seed(repo: Path) -> State:
    store = open_store(load_config(repo / "reconcile.yaml"))
    state = store.write(store.read().with_entry("www", _entry(1, "www.example.com")))
    intent = Intent(op="creating", common_name="api.example.com", contract_id="ctr_1-AB123",
                    at=datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), detail={"why": ["x", 1]})
    api = StateEntry(contract_id="ctr_1-AB123", common_name="api.example.com", intent=intent,
                     change=ChangeInFlight(change_id=5, status="wait", waiting_for=("a",)))
    return store.write(state.with_entry("api", api))


def test_pull_edit_push_and_every_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          state_backend: dict[str, str]) -> None:
    repo = _repo(tmp_path, monkeypatch, state_backend)
    assert "holds no state yet" in run("state", "pull").stderr
    seeded = _seed(repo)
    pulled = run("state", "pull")
    assert pulled.exit_code == 0, pulled.output
    assert State.model_validate_json(pulled.stdout) == seeded and pulled.stdout == seeded.to_json()
    doc = json.loads(pulled.stdout)
    doc["entries"]["www"]["spec_hash"] = "edited"
    (repo / "edited.json").write_text(json.dumps(doc))
    pushed = run("state", "push", "edited.json")
    assert pushed.exit_code == 0, pushed.output
    assert f"serial {seeded.serial + 1}" in pushed.stdout
    now = open_store(load_config(repo / "reconcile.yaml")).read()
    assert now.entries["www"].spec_hash == "edited" and now.entries["www"].revision == 2

    stale = run("state", "push", "edited.json")  # the same document again: the store moved on
    assert stale.exit_code == 1 and f"is at serial {seeded.serial}, but state" in stale.stderr, stale.output
    foreign = {**doc, "lineage": "00000000-0000-0000-0000-000000000000", "serial": now.serial}
    foreign["entries"]["www"]["revision"] = 2
    (repo / "foreign.json").write_text(json.dumps(foreign))
    refused = run("state", "push", "foreign.json")
    assert refused.exit_code == 1 and "belongs to another state; refusing to push it" in refused.stderr
    tampered = {**json.loads(run("state", "pull").stdout), "serial": 99}
    (repo / "tampered.json").write_text(json.dumps(tampered))
    assert "not a state reconcile wrote" in run("state", "push", "tampered.json").stderr
    assert "not a JSON document" in run("state", "push", "-", input="nope").stderr
    assert open_store(load_config(repo / "reconcile.yaml")).read() == now  # nothing refused was written

    history = run("state", "history")
    assert history.exit_code == 0, history.output
    old = run("state", "pull", "--serial", str(seeded.serial))
    if state_backend["backend"] == "postgres":
        lines = history.stdout.splitlines()
        assert lines[0].split() == ["VERSION", "SERIAL", "WRITTEN", "ENTRIES", "BY"]
        assert [line.split()[:2] for line in lines[1:]] == [["3", str(now.serial)], ["2", str(seeded.serial)],
                                                           ["1", "2"]]
        assert "state push by" in lines[1]
        assert old.exit_code == 0 and old.stdout == seeded.to_json()
        listed = json.loads(run("state", "history", "--format", "json").stdout)
        assert listed[0]["written_by"]["operation"] == "state push"
    else:
        assert "git log -p -- state" in history.stderr and f"{now.serial}" in history.stdout
        assert old.exit_code == 1 and "earlier versions are in git" in old.stderr


def test_push_into_an_empty_backend_keeps_the_document_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              state_backend: dict[str, str]) -> None:
    source = _repo(tmp_path, monkeypatch, {"backend": "file"})
    seeded = _seed(source)
    (tmp_path / "doc.json").write_text(run("state", "pull").stdout)
    target = tmp_path / "target"
    target.mkdir()
    (target / "reconcile.yaml").write_text(yaml.safe_dump({"state": state_backend}))
    monkeypatch.chdir(target)
    assert run("state", "push", str(tmp_path / "doc.json")).exit_code == 0
    assert run("state", "pull").stdout == seeded.to_json()


def _files(layout: Layout) -> dict[str, bytes]:
    paths = [layout.header, *layout.entry_files().values()]
    return {p.name: p.read_bytes() for p in paths}


def test_migrate_file_to_postgres_to_file_is_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            pg_workspace: PgWorkspace) -> None:
    repo = _repo(tmp_path, monkeypatch, {"backend": "file"})
    seeded = _seed(repo)
    layout = Layout(load_config(repo / "reconcile.yaml").state_path)
    before = _files(layout)
    assert len(before) == 3

    there = run("state", "migrate", "--to", "postgres", "--workspace", pg_workspace.name)
    assert there.exit_code == 0, there.output
    assert f"migrated state {layout.header} to postgres workspace '{pg_workspace.name}'" in there.stdout
    assert f"set `state: {{backend: postgres, workspace: {pg_workspace.name}}}`" in there.stderr
    assert "already holds this state" in run("state", "migrate", "--to", "postgres", "--workspace",
                                             pg_workspace.name).stdout
    shutil.rmtree(layout.directory)
    back = run("state", "migrate", "--to", "file", "--workspace", pg_workspace.name)
    assert back.exit_code == 0, back.output
    assert _files(layout) == before  # byte for byte, every file

    # The database as the configured backend: the state reads the same through it.
    (repo / "reconcile.yaml").write_text(yaml.safe_dump({"state": pg_workspace.config}))
    assert run("state", "pull").stdout == seeded.to_json()

    # A target holding another lineage is refused, nothing written.
    other = tmp_path / "other"
    other.mkdir()
    (other / "reconcile.yaml").write_text(yaml.safe_dump({"state": {"backend": "file"}}))
    monkeypatch.chdir(other)
    _seed(other)
    other_before = _files(Layout(other / "state" / "reconcile-state.json"))
    refused = run("state", "migrate", "--to", "file", "--workspace", pg_workspace.name)
    assert refused.exit_code == 1 and "already holds another state (lineage" in refused.stderr, refused.output
    refused = run("state", "migrate", "--to", "postgres", "--workspace", pg_workspace.name)
    assert refused.exit_code == 1 and "already holds another state (lineage" in refused.stderr, refused.output
    assert _files(Layout(other / "state" / "reconcile-state.json")) == other_before

    # A target of the same lineage that moved on after the migration is not overwritten.
    monkeypatch.chdir(repo)
    (repo / "reconcile.yaml").write_text(yaml.safe_dump({"state": pg_workspace.config}))
    store = open_store(load_config(repo / "reconcile.yaml"))
    store.write(store.read().with_entry("new", _entry(3, "new.example.com")))
    ahead = run("state", "migrate", "--to", "postgres")
    assert ahead.exit_code == 1 and "is ahead of" in ahead.stderr, ahead.output


def test_migrate_needs_a_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _repo(tmp_path, monkeypatch, {"backend": "file"})
    done = run("state", "migrate", "--to", "postgres")
    assert done.exit_code == 1 and "pass --workspace NAME" in done.output


HOLD = """
import pathlib, sys, time
from reconciler.state import StateStore
with StateStore(sys.argv[1]).lock('apply'):
    pathlib.Path(sys.argv[2]).touch()
    time.sleep(60)
"""


def test_file_unlock_removes_a_dead_holders_record_and_refuses_a_live_one(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path, monkeypatch, {"backend": "file"})
    layout = Layout(load_config(repo / "reconcile.yaml").state_path)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(layout.header), str(ready)])
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        locked = CliRunner().invoke(reconcile, ["import", "--all", "--contract", "c"])
        assert locked.exit_code == 1 and f"pid={proc.pid}" in locked.stderr, locked.output
        lock_id = json.loads(layout.info.read_text())["id"]
        assert f"id={lock_id}" in locked.stderr
        live = run("state", "unlock", lock_id, "--force")
        assert live.exit_code == 1 and f"kill {proc.pid}" in live.stderr, live.output
        declined = run("state", "unlock", lock_id, input="n\n")
        assert declined.exit_code == 1 and "Aborted" in declined.output
    finally:
        proc.kill()
        proc.wait()
    assert layout.info.exists()  # a killed holder's record stays behind ...
    assert "no lock other" in run("state", "unlock", "other", "--force").stderr
    done = run("state", "unlock", lock_id, input="y\n")
    assert done.exit_code == 0 and "was no longer held" in done.stdout, done.output
    assert not layout.info.exists()  # ... until unlock removes it
