"""A damaged state file (the header or an entry file) stops plan and apply with a message naming
the file and its backup, and is never overwritten: its bytes (and the backup's) are the same after
the refused run, and CPS saw no write. A file left with git conflict markers names the fix
(``reconcile state merge``) instead of a backup, which would hold one side only.

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
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from tests.e2e.test_apply_e2e import dv_hook, write_repo

STATE = Path("state") / "reconcile-state.json"
BACKUP = Path("state") / "reconcile-state.json.backup"
ENTRY = Path("state") / "reconcile-state" / "www.json"
TARGETS = {"header": (STATE, BACKUP), "entry": (ENTRY, Path(f"{ENTRY}.backup"))}
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
    with SandboxServer(speed=20000, engine=EngineConfig(validation_policy="trust-ack")) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def deployed(server: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose one DV enrollment was applied for real (state and backup on disk)."""
    repo = tmp_path_factory.mktemp("deployed") / "repo"
    write_repo(repo, "ctr_1-CORRUPT", [dv_hook("www", "www.corrupt.example.com")])
    with pytest.MonkeyPatch.context() as patch:
        applied = run(server, repo, "apply", "--auto-approve", "--timeout", "25", monkeypatch=patch)
    assert applied.exit_code == 0, applied.output + applied.stderr
    assert (repo / STATE).is_file() and (repo / ENTRY).is_file() and (repo / TARGETS["entry"][1]).is_file()
    return repo


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


CORRUPTIONS = {
    "truncated": _half,
    "truncated-to-empty": lambda data: b"",
    "zero-filled": lambda data: b"\0" * len(data),  # what a crash can leave on some filesystems
    "not-utf8": lambda data: b"\xff\xfe" + data[2:],
    "garbage-appended": lambda data: data + b"\n<<<<<<< HEAD\n",  # a botched merge
    "conflicted": lambda data: b"<<<<<<< HEAD\n" + data + b"=======\n" + data + b">>>>>>> other\n",
    "not-an-object": lambda data: b"[]",
    # A field of the wrong type: the first field whose value is a string or a number.
    "schema-violation": lambda data: json.dumps(
        {**json.loads(data), **{next(k for k in ("serial_base", "enrollment_id") if k in json.loads(data)): "x"}}
    ).encode(),
    # Read as a fresh state, an emptied object would get a new lineage and the plan would offer
    # to adopt every enrollment of the contract.
    "emptied-object": lambda data: b"{}\n",
    "lineage-or-binding-removed": lambda data: json.dumps(
        {k: v for k, v in json.loads(data).items() if k not in ("lineage", "common_name")}).encode(),
}
CONFLICT_MARKED = {"garbage-appended", "conflicted"}


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
def test_damaged_state_is_refused_by_plan_and_apply_and_left_untouched(
        damage: str, target: str, server: SandboxServer, deployed: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(deployed, repo)
    damaged, backup_path = TARGETS[target]
    bad = CORRUPTIONS[damage]((repo / damaged).read_bytes())
    (repo / damaged).write_bytes(bad)
    backup = (repo / backup_path).read_bytes() if (repo / backup_path).exists() else None
    listing = sorted(p.name for p in (repo / "state").iterdir())
    server.clear_requests()

    for args in (["plan"], ["apply", "--auto-approve", "--timeout", "25"], ["plan", "--out", "plan.json"]):
        result = run(server, repo, *args, monkeypatch=monkeypatch)
        assert result.exit_code == 1, (args, result.output, result.stderr)
        message = result.stderr
        assert "Traceback" not in message
        if damage in CONFLICT_MARKED:
            assert f"state file {repo / damaged} holds git conflict markers" in message, message
            assert "reconcile state merge" in message and "restore by hand" not in message, message
            assert len(message.strip().splitlines()) == 1, message
        else:
            assert f"state file {repo / damaged} is unreadable" in message, message
            copy = (f"the previous copy is {repo / backup_path}" if backup is not None
                    else f"no backup exists ({repo / backup_path})")
            assert copy in message and "restore by hand" in message, message
        assert (repo / damaged).read_bytes() == bad, f"{args}: the damaged file was rewritten"
        if backup is not None:
            assert (repo / backup_path).read_bytes() == backup, f"{args}: the backup was rewritten"
    assert not (repo / "plan.json").exists()
    # Only the lock file may have appeared (apply takes the lock before reading the state).
    assert set(sorted(p.name for p in (repo / "state").iterdir())) - set(listing) <= {"reconcile-state.json.lock"}
    assert [r for r in server.requests() if r["method"] in MUTATING] == []


def test_missing_state_header_is_refused(server: SandboxServer, deployed: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A deleted header is not a fresh start while entries or its backup exist (that would re-create)."""
    repo = tmp_path / "repo"
    shutil.copytree(deployed, repo)
    header = (repo / STATE).read_bytes()
    (repo / STATE).unlink()
    server.clear_requests()
    for args in (["plan"], ["apply", "--auto-approve"]):
        result = run(server, repo, *args, monkeypatch=monkeypatch)
        assert result.exit_code == 1, result.output
        assert f"state file {repo / STATE} is missing but 1 entry files exist" in result.stderr
        assert f"git checkout -- {repo / STATE}" in result.stderr
        assert not (repo / STATE).exists() and (repo / ENTRY).is_file()
    shutil.rmtree(repo / ENTRY.parent)
    (repo / BACKUP).write_bytes(header)
    for args in (["plan"], ["apply", "--auto-approve"]):
        result = run(server, repo, *args, monkeypatch=monkeypatch)
        assert result.exit_code == 1, result.output
        assert f"state file {repo / STATE} is missing but its backup {repo / BACKUP} exists" in result.stderr
        assert f"cp {repo / BACKUP} {repo / STATE}" in result.stderr
        assert not (repo / STATE).exists() and (repo / BACKUP).read_bytes() == header
    assert [r for r in server.requests() if r["method"] in MUTATING] == []


# A DV publish hook that damages a state file while apply is running (between its steps).
def _truncating_hook(path: Path) -> str:
    return (f"{sys.executable} -c \"import pathlib; p = pathlib.Path('{path}'); "
            "p.write_bytes(p.read_bytes()[:40])\"")


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_state_damaged_during_apply_is_not_overwritten(target: str, server: SandboxServer, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply's next save meets the damaged file and stops instead of writing over it."""
    repo = tmp_path / "repo"
    damaged = TARGETS[target][0]
    spec = dv_hook("www", f"www.midrun-{target}.example.com")
    spec["validation"]["hook"]["publish"] = _truncating_hook(damaged)
    write_repo(repo, f"ctr_1-MIDRUN{target.upper()}", [spec])
    result = run(server, repo, "apply", "--auto-approve", "--timeout", "25", monkeypatch=monkeypatch)
    assert len((repo / damaged).read_bytes()) == 40, (
        "apply wrote over a state file that was damaged under it between two steps: a save must notice "
        "that the file is no longer the one this run last wrote (re-read, or at least stat it) and refuse")
    assert result.exit_code == 1, result.output + result.stderr
    assert "is unreadable" in result.output + result.stderr, result.output + result.stderr
