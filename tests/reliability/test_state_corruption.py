"""A damaged state file stops plan and apply with a message naming the backup, and is never
overwritten: its bytes (and the backup's) are the same after the refused run, and CPS saw no write.

The CLI runs in process (click's runner) against a SandboxServer over real HTTPS; the repository
is first deployed for real, so the state has entries, a backup exists, and a wrong "fresh start"
would be visible (a second enrollment, an overwritten file).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli as reconcile
from reconciler.sandbox.testing import SandboxServer
from tests.e2e.test_apply_e2e import dv_hook, write_repo

STATE = Path("state") / "reconcile-state.json"
BACKUP = Path("state") / "reconcile-state.json.backup"
MUTATING = ("POST", "PUT", "DELETE")


def _env(server: SandboxServer) -> dict[str, str]:
    return {"AKAMAI_EDGERC": str(server.edgerc), "AKAMAI_EDGERC_SECTION": "sandbox",
            "RECONCILE_CA_BUNDLE": server.ca_bundle, "RECONCILE_POLL_INTERVAL": "0.02"}


def run(server: SandboxServer, repo: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> Result:
    with monkeypatch.context() as patch:
        patch.chdir(repo)
        return CliRunner().invoke(reconcile, ["--no-color", *args], env=_env(server))


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(speed=20000) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def deployed(server: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose one DV enrollment was applied for real (state and backup on disk)."""
    repo = tmp_path_factory.mktemp("deployed") / "repo"
    write_repo(repo, "ctr_1-CORRUPT", [dv_hook("www", "www.corrupt.example.com")])
    with pytest.MonkeyPatch.context() as patch:
        applied = run(server, repo, "apply", "--auto-approve", "--timeout", "25", monkeypatch=patch)
    assert applied.exit_code == 0, applied.output + applied.stderr
    assert (repo / STATE).is_file() and (repo / BACKUP).is_file()
    return repo


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


CORRUPTIONS = {
    "truncated": _half,
    "truncated-to-empty": lambda data: b"",
    "zero-filled": lambda data: b"\0" * len(data),  # what a crash can leave on some filesystems
    "not-utf8": lambda data: b"\xff\xfe" + data[2:],
    "garbage-appended": lambda data: data + b"\n<<<<<<< HEAD\n",  # a botched merge
    "not-an-object": lambda data: b"[]",
    "schema-violation": lambda data: data.replace(b'"serial": ', b'"serial": "x", "_": ', 1),
    # Read as a fresh state, an emptied object would get a new lineage and the plan would offer
    # to adopt every enrollment of the contract.
    "emptied-object": lambda data: b"{}\n",
    "lineage-removed": lambda data: json.dumps(
        {k: v for k, v in json.loads(data).items() if k != "lineage"}).encode(),
}


@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
def test_damaged_state_is_refused_by_plan_and_apply_and_left_untouched(
        damage: str, server: SandboxServer, deployed: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(deployed, repo)
    bad = CORRUPTIONS[damage]((repo / STATE).read_bytes())
    (repo / STATE).write_bytes(bad)
    backup = (repo / BACKUP).read_bytes()
    listing = sorted(p.name for p in (repo / "state").iterdir())
    server.clear_requests()

    for args in (["plan"], ["apply", "--auto-approve", "--timeout", "25"], ["plan", "--out", "plan.json"]):
        result = run(server, repo, *args, monkeypatch=monkeypatch)
        assert result.exit_code == 1, (args, result.output, result.stderr)
        message = result.stderr
        assert f"state file {repo / STATE} is unreadable" in message, message
        assert f"the previous copy is {repo / BACKUP}" in message and "restore by hand" in message, message
        assert "Traceback" not in message
        assert (repo / STATE).read_bytes() == bad, f"{args}: the damaged file was rewritten"
        assert (repo / BACKUP).read_bytes() == backup, f"{args}: the backup was rewritten"
    assert not (repo / "plan.json").exists()
    # Only the lock file may have appeared (apply takes the lock before reading the state).
    assert set(sorted(p.name for p in (repo / "state").iterdir())) - set(listing) <= {"reconcile-state.json.lock"}
    assert [r for r in server.requests() if r["method"] in MUTATING] == []


def test_missing_state_with_a_backup_is_refused(server: SandboxServer, deployed: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A deleted state file is not a fresh start while its backup exists (that would re-create)."""
    repo = tmp_path / "repo"
    shutil.copytree(deployed, repo)
    (repo / STATE).unlink()
    backup = (repo / BACKUP).read_bytes()
    server.clear_requests()
    for args in (["plan"], ["apply", "--auto-approve"]):
        result = run(server, repo, *args, monkeypatch=monkeypatch)
        assert result.exit_code == 1, result.output
        assert f"state file {repo / STATE} is missing but its backup {repo / BACKUP} exists" in result.stderr
        assert f"cp {repo / BACKUP} {repo / STATE}" in result.stderr
        assert not (repo / STATE).exists() and (repo / BACKUP).read_bytes() == backup
    assert [r for r in server.requests() if r["method"] in MUTATING] == []


# A DV publish hook that damages the state file while apply is running (between its steps).
TRUNCATING_HOOK = (f"{sys.executable} -c \"import pathlib; p = pathlib.Path('{STATE}'); "
                   "p.write_bytes(p.read_bytes()[:40])\"")


def test_state_damaged_during_apply_is_not_overwritten(server: SandboxServer, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply's next save meets the damaged file and stops instead of writing over it."""
    repo = tmp_path / "repo"
    spec = dv_hook("www", "www.midrun.example.com")
    spec["validation"]["hook"]["publish"] = TRUNCATING_HOOK
    write_repo(repo, "ctr_1-MIDRUN", [spec])
    result = run(server, repo, "apply", "--auto-approve", "--timeout", "25", monkeypatch=monkeypatch)
    damaged = (repo / STATE).read_bytes()
    assert len(damaged) == 40, (
        "apply wrote over a state file that was damaged under it between two steps: a save must notice "
        "that the file is no longer the one this run last wrote (re-read, or at least stat it) and refuse")
    assert result.exit_code == 1, result.output + result.stderr
    assert "is unreadable" in result.output + result.stderr, result.output + result.stderr
