"""State surgery (``reconciler.state.surgery``) and the `reconcile state` commands around it: every
edit under the lock, a new serial, the previous file kept as the backup, refusals that lose nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from reconciler.errors import StateError
from reconciler.state import surgery
from reconciler.state.model import Intent, State, StateEntry
from reconciler.state.store import StateStore


def _entry(eid: int | None, cn: str = "www.example.com", intent: str | None = None) -> StateEntry:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    return StateEntry(enrollment_id=eid, contract_id="ctr_1-AB", common_name=cn,
                      intent=Intent(op=intent, common_name=cn, contract_id="ctr_1-AB", at=at) if intent else None)


def _state() -> State:
    return State(entries={"www": _entry(10), "api": _entry(11, "api.example.com"),
                          "half": _entry(None, "half.example.com", intent="creating")})


def test_move_rebinds_and_forgets_the_old_name() -> None:
    moved = surgery.move(_state(), "www", "www-renamed")
    assert "www" not in moved.entries
    assert moved.entries["www-renamed"] == _entry(10)


@pytest.mark.parametrize(("old", "new", "why"), [
    ("www", "api", "is already bound to enrollment 11"),
    ("nope", "x", "no state entry named 'nope'"),
    ("www", "Bad Name", "not a valid name"),
    ("www", "www", "already named"),
])
def test_move_refusals(old: str, new: str, why: str) -> None:
    with pytest.raises(StateError, match=why):
        surgery.move(_state(), old, new)


def test_forget_refuses_an_entry_with_a_cps_change_in_flight_unless_forced() -> None:
    from reconciler.state.model import ChangeInFlight
    busy = _state().with_entry("www", _entry(10).model_copy(update={"change": ChangeInFlight(
        change_id=77, change_type="renewal", status="wait-upload-third-party")}))
    with pytest.raises(StateError, match="CPS change 77 in flight"):
        surgery.forget(busy, "www")
    assert "www" not in surgery.forget(busy, "www", force=True).entries


def test_forget_refuses_an_entry_with_an_operation_in_flight_unless_forced() -> None:
    with pytest.raises(StateError, match="creating since 2026-12-01"):
        surgery.forget(_state(), "half")
    assert "half" not in surgery.forget(_state(), "half", force=True).entries
    assert set(surgery.forget(_state(), "www").entries) == {"api", "half"}


# -- the commands ------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    (root / "reconcile.yaml").write_text(yaml.safe_dump({"default_contract": "ctr_1-AB"}))
    StateStore(root / "state" / "reconcile-state.json").write(_state())
    monkeypatch.chdir(root)
    return root


def reconcile(*args: str) -> Result:
    return CliRunner().invoke(cli, ["state", *args], catch_exceptions=False)


def _store(repo: Path) -> StateStore:
    return StateStore(repo / "state" / "reconcile-state.json")


def test_list_and_show(repo: Path) -> None:
    listed = reconcile("list")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == ["NAME", "ENROLLMENT", "CONTRACT", "CN", "IN", "FLIGHT"]
    assert lines[1].split()[:4] == ["api", "11", "ctr_1-AB", "api.example.com"]
    assert "creating (interrupted?)" in lines[2]
    data = json.loads(reconcile("list", "--format", "json").output)
    assert [e["name"] for e in data["entries"]] == ["api", "half", "www"]
    shown = json.loads(reconcile("show", "www").output)
    assert shown["www"]["enrollment_id"] == 10


def test_mv_round_trip_moves_the_binding_and_its_working_files(repo: Path) -> None:
    store = _store(repo)
    before = store.read()
    ledger, csr = repo / "state" / "challenges" / "www.json", repo / "state" / "csr" / "www.rsa.csr.pem"
    for path in (ledger, csr):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(path.name)
    moved = reconcile("mv", "www", "www-renamed")
    assert moved.exit_code == 0, moved.output
    after = store.read()
    assert after.lineage == before.lineage
    assert after.entries["www-renamed"].content() == before.entries["www"].content() and "www" not in after.entries
    assert not ledger.exists() and (ledger.parent / "www-renamed.json").read_text() == "www.json"
    assert (csr.parent / "www-renamed.rsa.csr.pem").exists()
    back = reconcile("mv", "www-renamed", "www")
    assert back.exit_code == 0
    assert {n: e.content() for n, e in store.read().entries.items()} == \
        {n: e.content() for n, e in before.entries.items()}
    assert ledger.exists()


def test_mv_onto_a_bound_name_and_rm_of_an_interrupted_create_change_nothing(repo: Path) -> None:
    store = _store(repo)
    before = store.read()
    refused = CliRunner().invoke(cli, ["state", "mv", "www", "api"])
    assert refused.exit_code == 1
    assert "'api' is already bound to enrollment 11" in refused.output
    refused = CliRunner().invoke(cli, ["state", "rm", "half"])
    assert refused.exit_code == 1 and "pass --force" in refused.output
    assert store.read() == before


def test_rm_forgets_without_touching_cps_and_says_how_to_undo(repo: Path) -> None:
    ledger = repo / "state" / "challenges" / "www.json"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.write_text("{}")
    removed = reconcile("rm", "www")
    assert removed.exit_code == 0
    assert "Forgot www; enrollment 10 stays in CPS, now unmanaged" in removed.output
    assert "reconcile import --contract ctr_1-AB --enrollment-id 10" in removed.output
    assert "www" not in _store(repo).read().entries and not ledger.exists()


def test_edits_wait_for_the_lock(repo: Path) -> None:
    with _store(repo).lock("apply"):
        locked = CliRunner().invoke(cli, ["state", "rm", "www"])
    assert locked.exit_code == 1
    assert "locked" in locked.output.lower()
    assert "www" in _store(repo).read().entries
