"""A state directory that cannot be written (read-only, full) stops apply with one line naming the
file and the cause, before anything reaches CPS: no traceback."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.apply.sandbox_rig import ORG, PERSON
from tests.sandbox.helpers import DEMO_PUBLISH

RECONCILE = [sys.executable, "-m", "reconciler"]


def _repo(root: Path, state_dir: Path) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "reconcile.yaml").write_text(yaml.safe_dump({
        "default_contract": "ctr_1-FS", "state_path": str(state_dir / "reconcile-state.json"),
        "defaults": {"admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG}}))
    (root / "specs" / "www.yaml").write_text(yaml.safe_dump({
        "name": "www", "type": "dv", "common_name": "www.example.com",
        "validation": {"publisher": "hook", "hook": {"publish": DEMO_PUBLISH}}}))
    return root


def _apply(repo: Path, limit_file_size: bool = False) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # in the child: every write past 0 bytes fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    env = {**os.environ, "RECONCILE_SANDBOX_SPEED": "20000", "NO_COLOR": "1"}
    return subprocess.run([*RECONCILE, "--sandbox", "apply", "--auto-approve"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=limit if limit_file_size else None)


def _one_line(result: subprocess.CompletedProcess[str], path: Path, cause: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: cannot write {path}") and lines[0].endswith(cause), lines[0]


def _nothing_sent(repo: Path) -> None:
    # the in-process sandbox (the "CPS" of --sandbox) was never even opened
    assert not (repo / ".reconcile" / "sandbox").exists()


def test_a_write_refused_for_size_is_one_line_and_nothing_reaches_cps(tmp_path: Path) -> None:
    state = tmp_path / "state"
    repo = _repo(tmp_path / "repo", state)
    result = _apply(repo, limit_file_size=True)
    _one_line(result, state / "reconcile-state.json.lock.info", "File too large")
    _nothing_sent(repo)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root and mount rights; skipped otherwise)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_state_directory_is_one_line(tmp_path: Path, tmpfs: Path) -> None:
    state = tmpfs / "state"
    state.mkdir()
    fd = os.open(tmpfs / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError, match="No space left"):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    repo = _repo(tmp_path / "repo", state)
    _one_line(_apply(repo), state / "reconcile-state.json.lock.info", "No space left on device")
    _nothing_sent(repo)


def test_a_read_only_state_directory_is_one_line(tmp_path: Path, tmpfs: Path) -> None:
    state = tmpfs / "state"
    state.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    repo = _repo(tmp_path / "repo", state)
    _one_line(_apply(repo), state / "reconcile-state.json.lock", "Read-only file system")
    _nothing_sent(repo)
