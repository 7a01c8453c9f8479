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
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from reconciler.state.model import State
from reconciler.state.render import StateRenderer


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (some filesystems refuse O_RDONLY on directories)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, fsync of the directory."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


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
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = self._renderer.render(state).encode("utf-8")
            if self.path.exists():
                self._keep_backup()
            atomic_write(self.path, data)
            self._known = signature(self.path)
            self._newest = (state.lineage, state.serial)
            self.writes += 1

    def _keep_backup(self) -> None:
        # The current file is complete and fsynced: a hard link makes it the backup without
        # copying it (the rename of the new file then leaves the backup the old inode; the one
        # directory fsync after that rename covers both). Filesystems without hard links copy.
        link = self.path.with_name(f".{self.backup_path.name}.{uuid.uuid4().hex}.tmp")
        try:
            os.link(self.path, link)
        except OSError:
            atomic_write(self.backup_path, self.path.read_bytes())
            return
        try:
            os.replace(link, self.backup_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(link)
            raise
