"""The state store's durability promises against the failures a disk and the OS really produce
(issue 25): a failed directory fsync, a deferred write that failed before a later one succeeded,
a write killed inside fsync, a full filesystem, and the umask of files meant to be committed.

Faults come from the OS boundary only: ``os.fsync``/``os.write`` replaced for the test (or a real
tiny tmpfs), or a real SIGKILL of a child process; the store's own code runs unpatched.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.state import State, StateEntry, StateStore


def _entry(cn: str, eid: int | None = None) -> StateEntry:
    return StateEntry(enrollment_id=eid, contract_id="ctr_1-AB123", common_name=cn)


def _bind(name: str, eid: int | None = None) -> Callable[[State], State]:
    return lambda s: s.with_entry(name, _entry(f"{name}.example.com", eid))


def _on_disk(store: StateStore) -> State:
    return StateStore(store.path).read()


def _is_dir(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state" / "reconcile-state.json")


def _stray(directory: Path) -> list[str]:
    """Temporary or link files left in the state directory (dot files ending in .tmp)."""
    return sorted(p.name for p in directory.rglob(".*") if p.name.endswith(".tmp"))


# -- 1. a failed directory fsync is a failed write ------------------------------------------------

def test_eio_on_directory_fsync_fails_the_write(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save_entry("a", _entry("a.example.com"))
    real = os.fsync

    def fsync(fd: int) -> None:
        if _is_dir(fd):
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as info:
        store.save_entry("created", _entry("created.example.com", 10001))
    assert info.value.errno == errno.EIO


def test_a_directory_that_cannot_be_opened_for_fsync_is_tolerated(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Platforms where a directory cannot be opened read-only: nothing to fsync, not a failure."""
    real = os.open

    def open_(path: object, flags: int, *args: int, **kw: object) -> int:
        if os.path.isdir(str(path)) and not flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EACCES, "Permission denied")
        return real(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", open_)
    store.save_entry("a", _entry("a.example.com"))
    assert "a" in _on_disk(store).entries


# -- 2 and 3. a deferred failure never costs a later record, and is cleared by a complete write -----

@contextlib.contextmanager
def _failing_fsyncs(monkeypatch: pytest.MonkeyPatch, times: int) -> Iterator[list[int]]:
    """The next ``times`` fsyncs of regular files fail with EIO (a transient disk error)."""
    real = os.fsync
    left = [times]

    def fsync(fd: int) -> None:
        if left[0] > 0 and not _is_dir(fd):
            left[0] -= 1
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync)
        yield left


async def _until_worker_failed(left: list[int]) -> None:
    for _ in range(500):
        if left[0] == 0:
            break
        await asyncio.sleep(0.01)
    assert left[0] == 0, "the write-behind worker never tried to write"
    await asyncio.sleep(0.05)  # let the worker record its failure


@pytest.mark.anyio
async def test_created_record_lands_after_a_failed_deferred_write(
        store: StateStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with store.lock("apply"):
        store.update(_bind("www"))
        with _failing_fsyncs(monkeypatch, 1) as left:
            store.update(_bind("progress"), defer=True)
            await _until_worker_failed(left)
        # CPS accepted the create: this record must reach the disk although the earlier write failed.
        with caplog.at_level(logging.WARNING, logger="reconciler.state"):
            store.update(_bind("www", 10001))
        disk = _on_disk(store)
        assert disk.entries["www"].enrollment_id == 10001
        assert "progress" in disk.entries  # the deferred record the failed write carried, too
        assert "deferred write failed" in caplog.text and "Input/output error" in caplog.text
        store.flush()  # recovered: nothing left to report
    assert _on_disk(store).entries["www"].enrollment_id == 10001


@pytest.mark.anyio
async def test_a_record_that_fails_too_reports_both_failures(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    with store.lock("apply"):
        store.update(_bind("www"))
        with _failing_fsyncs(monkeypatch, 1) as left:
            store.update(_bind("progress"), defer=True)
            await _until_worker_failed(left)
        with _failing_fsyncs(monkeypatch, 10), pytest.raises(StateError) as info:
            store.update(_bind("www", 10001))
        message = str(info.value)
        assert "Input/output error" in message and "an earlier deferred write failed too" in message
    # The release wrote the complete state (the disk works again); the failed record was never
    # claimed durable, and is not in the run's view either.
    disk = _on_disk(store)
    assert disk.entries["www"].enrollment_id is None and "progress" in disk.entries


@pytest.mark.anyio
async def test_flush_after_a_recovered_failure_does_not_fail(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    with store.lock("apply"):
        store.update(_bind("www"))
        with _failing_fsyncs(monkeypatch, 1) as left:
            store.update(_bind("progress"), defer=True)
            await _until_worker_failed(left)
        store.flush()  # its own write puts the complete state on disk: the run goes on
        assert "progress" in _on_disk(store).entries
        store.flush()
    assert set(_on_disk(store).entries) == {"www", "progress"}


# -- 4. no stray files after a write killed in fsync or failed for lack of space -------------------

KILLED_IN_FSYNC = textwrap.dedent("""
    import os, signal, stat, sys
    from reconciler.state import StateEntry, StateStore

    store = StateStore(sys.argv[1])
    with store.lock("apply"):
        store.save_entry("a", StateEntry(contract_id="c", common_name="a.example.com"))
        real = os.fsync
        def fsync(fd):
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                os.kill(os.getpid(), signal.SIGKILL)  # the power cut, inside the data fsync
            real(fd)
        os.fsync = fsync
        store.save_entry("b", StateEntry(contract_id="c", common_name="b.example.com"))
""")


def test_no_stray_file_survives_a_write_killed_in_fsync(store: StateStore) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLED_IN_FSYNC, str(store.path)], capture_output=True,
                          timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert _stray(store.path.parent), "the kill left nothing behind: the test no longer reaches the fault"
    with store.lock("apply"):
        assert set(store.read().entries) == {"a"}
        store.save_entry("b", _entry("b.example.com"))
        store.save_entry("c", _entry("c.example.com"))
    assert _stray(store.path.parent) == []
    assert set(_on_disk(store).entries) == {"a", "b", "c"}


def test_no_stray_file_survives_an_injected_enospc(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC as a write-back filesystem (NFS, a thin volume) reports it: from the data fsync."""
    store.save_entry("a", _entry("a.example.com"))
    real = os.fsync
    left = [1]

    def fsync(fd: int) -> None:
        if left[0] and not _is_dir(fd):
            left[0] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync)
        with pytest.raises(OSError) as info:
            store.save_entry("b", _entry("b.example.com"))
    assert info.value.errno == errno.ENOSPC
    store.save_entry("b", _entry("b.example.com"))
    assert _stray(store.path.parent) == []
    assert set(_on_disk(store).entries) == {"a", "b"}


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"SKIPPED LOUDLY: cannot mount a tmpfs here ({done.stderr.strip()}); the injected-ENOSPC "
                    "test covers the same path")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_no_stray_file_survives_a_full_filesystem(tiny_fs: Path) -> None:
    store = StateStore(tiny_fs / "state" / "reconcile-state.json")
    store.save_entry("a", _entry("a.example.com"))
    filler = tiny_fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 1024)
    finally:
        os.close(fd)
    big = {f"e{i}": _entry(f"e{i}.{uuid.uuid4().hex}.example.com") for i in range(40)}
    with pytest.raises(OSError) as info:
        store.update(lambda s: State.model_validate({**s.model_dump(), "entries": {**s.entries, **big}}))
    assert info.value.errno == errno.ENOSPC
    filler.unlink()
    store.save_entry("b", _entry("b.example.com"))
    assert _stray(store.path.parent) == []
    assert set(_on_disk(store).entries) == {"a", "b"}


def test_stale_temp_files_of_the_store_are_removed_when_the_lock_is_taken(store: StateStore) -> None:
    store.save_entry("a", _entry("a.example.com"))
    directory = store.path.parent
    left = [directory / ".reconcile-state.json.k2j4.tmp", directory / ".reconcile-state.json.lock.info.x9.tmp",
            directory / f".reconcile-state.json.backup.{uuid.uuid4().hex}.tmp"]
    for path in left:
        path.write_text("{}")
    other = directory / ".someone-elses.tmp"
    other.write_text("not ours")
    with store.lock("apply"):
        pass
    assert [p for p in left if p.exists()] == []
    assert other.exists()  # only what the store owns


# -- 5. files meant to be committed follow the umask ------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_new_state_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        store = StateStore(tmp_path / "state" / "reconcile-state.json")
        store.save_entry("a", _entry("a.example.com"))
        store.save_entry("b", _entry("b.example.com"))
    finally:
        os.umask(old)
    wanted = 0o666 & ~umask
    files = [p for p in store.path.parent.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == wanted, (path, oct(path.stat().st_mode))


def test_creating_the_state_directory_fsyncs_its_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[tuple[int, int]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            synced.append((st.st_dev, st.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = StateStore(tmp_path / "repo" / "state" / "reconcile-state.json")
    store.save_entry("a", _entry("a.example.com"))
    for directory in (tmp_path, tmp_path / "repo"):
        st = directory.stat()
        assert (st.st_dev, st.st_ino) in synced, f"{directory} was not fsynced after a directory was made in it"
