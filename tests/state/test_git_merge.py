"""State kept in git: real repositories, real branches, real ``git merge`` (issue 16, first section).

Applies are recorded through the apply journal, as ``reconcile apply`` records them; the CLI's
``state merge`` and the merge driver run as the installed ``reconcile`` (the driver is what git
itself spawns). Every test fails with the format-1 single file, which conflicted on every pair of
applies (``serial``, ``last_refresh``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.apply.journal import StateJournal
from reconciler.errors import StateError
from reconciler.state import State, StateEntry, StateStore
from reconciler.state.layout import Layout
from tests.gitrepo import git, init_repo

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

RECONCILE = Path(sys.executable).with_name("reconcile")


def reconcile(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{RECONCILE.parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(RECONCILE), *args], cwd=repo, capture_output=True, text=True, env=env, timeout=60,
                          check=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo")
    (root / "reconcile.yaml").write_text("default_contract: ctr_1-AB123\n")
    (root / "specs").mkdir()
    # What `reconcile import` writes into a new repository: working files stay out of git.
    lines = Layout(root / "state" / "reconcile-state.json").gitignore(root)
    (root / ".gitignore").write_text("\n".join(lines) + "\n")
    return root


def store(repo: Path) -> StateStore:
    return StateStore(repo / "state" / "reconcile-state.json")


def apply_create(repo: Path, name: str, eid: int, change_id: int) -> None:
    """What an apply that creates ``name`` records, step by step (held lock, like apply)."""
    s = store(repo)
    with s.lock("apply"):
        journal = StateJournal(s)
        journal.bind(name, contract_id="ctr_1-AB123", common_name=f"{name}.example.com", prevent_destroy=False)
        journal.intent(name, "creating")
        journal.created(name, eid, change_id, "new-certificate")
        journal.finished(name, f"hash-{name}-1")


def apply_update(repo: Path, name: str, change_id: int, spec_hash: str) -> None:
    s = store(repo)
    with s.lock("apply"):
        journal = StateJournal(s)
        journal.intent(name, "updating", {"spec_hash": spec_hash})
        journal.change_opened(name, change_id, "update")
        journal.finished_spec(name, spec_hash)


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def test_branches_applying_to_different_enrollments_merge_without_conflict(repo: Path) -> None:
    apply_create(repo, "www", 10001, 1)
    apply_create(repo, "api", 10002, 2)
    commit(repo, "main applies www and api")
    git(repo, "checkout", "-q", "-b", "a")
    apply_create(repo, "shop", 10003, 3)
    apply_update(repo, "www", 4, "hash-www-2")
    commit(repo, "a: creates shop, updates www")
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-q", "-b", "b")
    apply_create(repo, "blog", 10004, 5)
    apply_update(repo, "api", 6, "hash-api-2")
    commit(repo, "b: creates blog, updates api")
    before_a = _serial_at(repo, "a")
    before_b = store(repo).read().serial

    git(repo, "checkout", "-q", "a")
    merged = git(repo, "merge", "--no-edit", "b", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr  # no conflict, no driver needed
    state = store(repo).read()
    assert {n: e.enrollment_id for n, e in state.entries.items()} == {
        "www": 10001, "api": 10002, "shop": 10003, "blog": 10004}
    assert state.entries["www"].spec_hash == "hash-www-2" and state.entries["api"].spec_hash == "hash-api-2"
    assert state.serial > max(before_a, before_b)  # a plan saved on either branch is stale now


def _serial_at(repo: Path, branch: str) -> int:
    head = git(repo, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    git(repo, "checkout", "-q", branch)
    serial = store(repo).read().serial
    git(repo, "checkout", "-q", head)
    return serial


def _diverge_on_www(repo: Path, theirs_change: int = 7) -> None:
    """Both branches work on ``www``: ours updates it (change 5), theirs later (a higher change)."""
    apply_create(repo, "www", 10001, 1)
    commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "theirs")
    apply_update(repo, "www", theirs_change, "hash-theirs")
    commit(repo, "theirs updates www")
    git(repo, "checkout", "-q", "main")
    apply_update(repo, "www", 5, "hash-ours")
    s = store(repo)
    s.save_entry("extra", StateEntry(contract_id="ctr_1-AB123", common_name="extra.example.com", enrollment_id=10009))
    commit(repo, "ours updates www, adds extra")


def test_a_conflicted_entry_names_the_fix_and_state_merge_resolves_it(repo: Path) -> None:
    _diverge_on_www(repo)
    merged = git(repo, "merge", "--no-edit", "theirs", check=False)
    assert merged.returncode != 0 and "reconcile-state/www.json" in merged.stdout  # only www conflicts
    www = repo / "state" / "reconcile-state" / "www.json"
    assert "<<<<<<<" in www.read_text()

    plan = reconcile(repo, "plan", "--no-refresh")
    assert plan.returncode == 1
    line = plan.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, plan.stderr
    assert str(www) in line and "reconcile state merge" in line and "restore by hand" not in line

    done = reconcile(repo, "state", "merge")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "www" in done.stdout and "Commit" in done.stdout
    assert git(repo, "diff", "--name-only", "--diff-filter=U").stdout == ""  # staged: nothing unmerged
    git(repo, "commit", "-q", "--no-edit")
    state = store(repo).read()
    entry = state.entries["www"]
    assert entry.enrollment_id == 10001
    assert entry.change is not None and entry.change.change_id == 7  # the newer change of the two
    assert set(state.entries) == {"www", "extra"}


def test_committed_backups_do_not_stop_state_merge(repo: Path) -> None:
    """A repository without the .gitignore lines commits the backups; their conflicts are settled too."""
    (repo / ".gitignore").unlink()
    _diverge_on_www(repo)
    assert git(repo, "merge", "--no-edit", "theirs", check=False).returncode != 0
    done = reconcile(repo, "state", "merge")
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(repo, "diff", "--name-only", "--diff-filter=U").stdout == ""
    for path in (repo / "state").rglob("*"):
        assert not path.is_file() or "<<<<<<<" not in path.read_text(), path
    git(repo, "commit", "-q", "--no-edit")


def test_state_merge_refuses_a_name_bound_to_two_enrollments(repo: Path) -> None:
    apply_create(repo, "www", 10001, 1)
    commit(repo, "base")
    git(repo, "checkout", "-q", "-b", "theirs")
    store(repo).update_entry("www", enrollment_id=20002)  # re-created on this branch
    commit(repo, "theirs")
    git(repo, "checkout", "-q", "main")
    store(repo).update_entry("www", enrollment_id=30003)
    commit(repo, "ours")
    assert git(repo, "merge", "--no-edit", "theirs", check=False).returncode != 0
    www = repo / "state" / "reconcile-state" / "www.json"
    conflicted = www.read_bytes()
    done = reconcile(repo, "state", "merge")
    assert done.returncode == 1
    assert "www: enrollment_id is 30003 here and 20002 on the other side" in done.stderr, done.stderr
    assert www.read_bytes() == conflicted  # nothing written


def test_the_installed_merge_driver_merges_during_git_merge(repo: Path) -> None:
    installed = reconcile(repo, "state", "merge", "--install")
    assert installed.returncode == 0, installed.stderr
    assert "merge=reconcile-state" in (repo / ".gitattributes").read_text()
    assert "reconcile state merge-file" in git(repo, "config", "merge.reconcile-state.driver").stdout
    _diverge_on_www(repo)
    env_path = f"{RECONCILE.parent}{os.pathsep}{os.environ['PATH']}"
    merged = subprocess.run(["git", "-C", str(repo), "merge", "--no-edit", "theirs"], capture_output=True,
                            text=True, env={**os.environ, "PATH": env_path}, check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    entry = store(repo).read().entries["www"]
    assert entry.change is not None and entry.change.change_id == 7


def test_a_conflicted_format_1_file_is_merged_and_migrated(repo: Path) -> None:
    path = repo / "state" / "reconcile-state.json"
    path.parent.mkdir()
    base = _v1({"www": _v1_entry(10001)}, serial=3)
    path.write_text(base)
    commit(repo, "base (format 1)")
    git(repo, "checkout", "-q", "-b", "theirs")
    path.write_text(_v1({"www": _v1_entry(10001), "api": _v1_entry(10002)}, serial=4))
    commit(repo, "theirs adds api")
    git(repo, "checkout", "-q", "main")
    path.write_text(_v1({"www": _v1_entry(10001, spec_hash="h2"), "shop": _v1_entry(10003)}, serial=5))
    commit(repo, "ours adds shop")
    assert git(repo, "merge", "--no-edit", "theirs", check=False).returncode != 0  # the old format conflicts
    done = reconcile(repo, "state", "merge")
    assert done.returncode == 0, done.stderr
    state = store(repo).read()
    assert {n: e.enrollment_id for n, e in state.entries.items()} == {"www": 10001, "api": 10002, "shop": 10003}
    assert state.entries["www"].spec_hash == "h2"
    assert json.loads(path.read_text())["format_version"] == 2


def _v1_entry(eid: int, spec_hash: str = "h1") -> dict[str, object]:
    return {"enrollment_id": eid, "contract_id": "ctr_1-AB123", "common_name": f"{eid}.example.com",
            "spec_hash": spec_hash}


def _v1(entries: dict[str, dict[str, object]], serial: int) -> str:
    data = {"format_version": 1, "lineage": "11111111-2222-3333-4444-555555555555", "serial": serial,
            "entries": entries}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def test_format_1_state_is_migrated_on_first_write_keeping_a_copy(tmp_path: Path) -> None:
    s = StateStore(tmp_path / "state" / "reconcile-state.json")
    s.path.parent.mkdir()
    old = _v1({"www": _v1_entry(10001)}, serial=41)
    s.path.write_text(old)
    read = s.read()
    assert read.serial == 41 and read.entries["www"].enrollment_id == 10001  # read as it is
    assert s.path.read_text() == old  # reading never writes
    written = s.update_entry("www", spec_hash="h2")
    assert written.serial == 42 and written.lineage == read.lineage
    assert (tmp_path / "state" / "reconcile-state.json.v1").read_text() == old
    header = json.loads(s.path.read_text())
    assert header == {"format_version": 2, "lineage": read.lineage, "serial_base": 41}
    assert StateStore(s.path).read() == written


def test_an_interrupted_migration_is_redone(tmp_path: Path) -> None:
    s = StateStore(tmp_path / "state" / "reconcile-state.json")
    s.path.parent.mkdir()
    s.path.write_text(_v1({"www": _v1_entry(10001)}, serial=2))
    (tmp_path / "state" / "reconcile-state").mkdir()
    (tmp_path / "state" / "reconcile-state" / "ghost.json").write_text("{}")  # a killed migration's leftover
    assert set(s.read().entries) == {"www"}  # the format-1 file is still the state
    s.update_entry("www", spec_hash="h2")
    assert set(StateStore(s.path).read().entries) == {"www"}


def test_merged_state_refuses_different_lineages() -> None:
    from reconciler.state.merge import merge_headers
    _, problems = merge_headers(None, State(serial=1), State(serial=1))
    assert problems and "different lineages" in problems[0]


def test_conflict_markers_are_named_not_called_corrupt(tmp_path: Path) -> None:
    s = StateStore(tmp_path / "state" / "reconcile-state.json")
    s.save_entry("www", StateEntry(contract_id="c", common_name="www.example.com"))
    entry = s.entries_dir / "www.json"
    entry.write_text("<<<<<<< HEAD\n" + entry.read_text() + "=======\n{}\n>>>>>>> theirs\n")
    with pytest.raises(StateError, match="git conflict markers.*reconcile state merge"):
        StateStore(s.path).read()
