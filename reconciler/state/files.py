"""Writing the state file: atomic replace, fsync, the previous copy kept as the backup.

A write goes to a temporary file in the same directory, is fsynced, then ``os.replace``d over the
old file and the directory is fsynced, so a crash leaves either the old or the new file, never a
torn one. Before that, the old file becomes ``<name>.backup``.

``StateFile`` serialises writes from several threads (the event loop writing an intent through,
the store's write-behind worker writing a coalesced batch). While ``ordered`` (the store holds the
lock, so no one else writes), it never lets an older state replace a newer one: a write whose
serial was overtaken is skipped.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from reconciler.state.model import State
from reconciler.state.render import StateRenderer


def fsync_dir(directory: Path) -> None:
    """Make a rename (or a new entry) in ``directory`` durable.

    Only "this directory cannot be opened for fsync" is tolerated (some platforms and filesystems
    refuse O_RDONLY on a directory: there is nothing to sync). A failed fsync is a failed write:
    the rename may not survive a power cut, so the caller must not believe it durable.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """``mkdir -p`` that fsyncs the parent of every directory it creates (so the new directory,
    and the files about to be written in it, survive a power cut)."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        fsync_dir(path.parent)


TEMP_SUFFIX = ".tmp"


def temp_name(path: Path, tag: str = "") -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<tag><random>.tmp`` (dot file, our prefix)."""
    return path.with_name(f".{path.name}.{tag}{secrets.token_hex(8)}{TEMP_SUFFIX}")


def _create(path: Path) -> tuple[int, Path]:
    # Not mkstemp: it creates 0600 whatever the umask, and the state is meant to be committed and
    # read by other users (CI, containers). The kernel applies the umask to 0666 here.
    while True:
        tmp = temp_name(path)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, fsync of the directory.

    On any failure before the rename the temporary file is removed; after it (the directory
    fsync failed) the new file is in place but the caller gets the error: it is not durable.
    """
    fd, tmp = _create(path)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def remove_stale_temps(directory: Path, owner: str) -> list[Path]:
    """Remove ``.<owner>.*.tmp`` files in ``directory``: what a killed writer of ``owner`` left.

    Call only while no writer of ``owner`` can be running (the state lock is held).
    """
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for path in directory.iterdir():
            if path.name.startswith(f".{owner}.") and path.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


Signature = tuple[int, int, int]
"""Inode, size and modification time of a file: what tells that someone else wrote it."""


def signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class StateFile:
    """The state file's writer: canonical text, backup of the previous file, atomic replace.

    While ``ordered``, a write first checks that the file is still the one this process last
    read or wrote (same inode, size and mtime: every write of ours is a new inode); if not,
    ``foreign(path, newest)`` decides, given the (lineage, serial) this writer last wrote (the
    store re-reads the file and refuses a damaged or foreign one), so a file damaged or replaced
    under a running apply is never written over silently.
    """

    def __init__(self, path: Path, backup_path: Path, foreign: Callable[[Path, tuple[str, int] | None], None]) -> None:
        self.path = path
        self.backup_path = backup_path
        self._foreign = foreign
        self._known: Signature | None = None
        self._io = threading.Lock()
        self._ordered = False
        self._renderer = StateRenderer()
        self._newest: tuple[str, int] | None = None
        self.writes = 0
        """Files written (a coalesced batch of deferred records counts once); benchmarks report it."""

    def ordered(self, on: bool) -> None:
        """Order writes by serial (only while this process alone writes the file) or stop."""
        with self._io:
            self._ordered = on
            self._newest = None
            self._known = None

    def known(self, sig: Signature | None, state: State) -> None:
        """The file as this process just read it: checked before the next ordered write, and
        ``state`` counts as written (flushing it unchanged writes nothing)."""
        with self._io:
            self._known = sig
            if self._ordered and sig is not None:
                self._newest = (state.lineage, state.serial)

    def written(self, state: State) -> bool:
        """Whether ``state`` (or a later state of its lineage) is already on disk."""
        with self._io:
            return self._covered(state)

    def _covered(self, state: State) -> bool:
        newest = self._newest
        return self._ordered and newest is not None and newest[0] == state.lineage and newest[1] >= state.serial

    def write(self, state: State) -> None:
        """Write ``state`` unless a later state of the same lineage was written already."""
        with self._io:
            if self._covered(state):
                return
            if self._ordered and self._known is not None and signature(self.path) != self._known:
                self._foreign(self.path, self._newest)  # raises unless the file holds what we wrote
            make_dirs(self.path.parent)
            data = self._renderer.render(state).encode("utf-8")
            try:
                if self.path.exists():
                    self._keep_backup()
                atomic_write(self.path, data)
            finally:
                # Whatever happened, the file now at ``path`` is one this process wrote (the old one,
                # or the new one if only the directory fsync failed): not someone else's.
                self._known = signature(self.path)
            self._newest = (state.lineage, state.serial)
            self.writes += 1

    def _keep_backup(self) -> None:
        # The current file is complete and fsynced: a hard link makes it the backup without
        # copying it (the rename of the new file then leaves the backup the old inode; the one
        # directory fsync after that rename covers both). Filesystems without hard links copy.
        with contextlib.suppress(OSError):
            if os.path.samefile(self.path, self.backup_path):
                # A write died after linking (killed, disk full): the backup already is this file,
                # and renaming a second link over it would be a POSIX no-op that leaves the link.
                return
        link = temp_name(self.backup_path)
        try:
            os.link(self.path, link)
        except OSError:
            atomic_write(self.backup_path, self.path.read_bytes())
            return
        try:
            os.replace(link, self.backup_path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)  # still there only if the rename failed or was a no-op
