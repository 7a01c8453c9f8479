"""The file backend: a state kept as files in a directory (the layout is ``layout.py``'s).

What it guarantees, whatever the crash or the concurrent run:

=============================================  ================================================
guarantee                                      how
=============================================  ================================================
a file is old or new, never torn               temporary file, fsync, rename, directory fsync
                                               (``files.py``); a failed fsync is a failed write
an entry renamed in one write is never lost    a write puts new and changed entries first,
                                               removals after: a crash in between leaves the
                                               entry under both names, never under none
a new state's lineage exists before entries    the header of a new state is written first
a migration is all or nothing                  format-1 file migrated by writing every entry,
                                               then replacing the old file by the header (the
                                               old file is kept as ``.v1`` first)
a file changed by someone else while this      before each write while ``ordered``: a stat of
process holds the lock is never written over   the header and of every file about to change;
                                               one that changed is re-read and must say what
                                               this process last wrote, else the write is refused
an older state never replaces a newer one      while ``ordered``, writes carry the store's
                                               generation; an overtaken one is skipped
nothing of a killed writer stays behind        its temporary files are removed when the lock is
                                               next taken; an entry's files go when it is removed
=============================================  ================================================

Only this module and ``layout.py`` know that a state is files; ``store.py`` speaks to the
:class:`reconciler.state.backend.StateBackend` contract.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
from pydantic import ValidationError

from reconciler.errors import StateError, StateLocked
from reconciler.state.backend import LockInfo, StateVersion, whoami
from reconciler.state.files import (
    Signature,
    atomic_write,
    fsync_dir,
    keep_backup,
    make_dirs,
    remove_stale_temps,
    replace_files,
    signature,
)
from reconciler.state.layout import Header, Layout
from reconciler.state.model import FORMAT_VERSION, State, StateEntry


class FileBackend:
    """Reads, writes and locks one file-backed state (see the module docstring for the promises)."""

    def __init__(self, path: Path) -> None:
        self.layout = Layout(path)
        self._io = threading.Lock()
        self._ordered = False
        self._generation = -1
        self._disk: State | None = None
        """The state as this process last read or wrote it (None: nothing on disk)."""
        self._format = FORMAT_VERSION
        self._sigs: dict[Path, Signature | None] = {}
        self.writes = 0
        """Writes made (a batch of entry files counts once); benchmarks report it."""

    @property
    def location(self) -> str:
        return str(self.layout.header)

    # -- reading -----------------------------------------------------------------------------

    def read(self) -> State:
        """The stored state, or a fresh one (serial 0) when nothing is stored."""
        with self._io:
            state, fmt, sigs = self._load()
            self._disk = state if state.serial else None
            self._format, self._sigs = fmt, sigs
            return state

    def _load(self) -> tuple[State, int, dict[Path, Signature | None]]:
        layout = self.layout
        sigs: dict[Path, Signature | None] = {layout.header: signature(layout.header)}
        try:
            raw = layout.header.read_bytes()
        except FileNotFoundError:
            if layout.header_backup.exists():
                raise StateError(
                    f"state file {layout.header} is missing but its backup {layout.header_backup} exists; "
                    f"restore it (cp {layout.header_backup} {layout.header}) or remove the backup to start "
                    "afresh") from None
            files = layout.entry_files()
            if files:
                raise StateError(f"state file {layout.header} is missing but {len(files)} entry files exist "
                                 f"in {layout.entries}: restore it (e.g. git checkout -- {layout.header})") from None
            return State(), FORMAT_VERSION, sigs
        parsed = layout.parse_header(raw)
        if isinstance(parsed, State):
            return parsed, 1, sigs
        entries: dict[str, StateEntry] = {}
        for name, path in layout.entry_files().items():
            sigs[path] = signature(path)
            entries[name] = layout.parse_entry(path, path.read_bytes())
        return _assemble(parsed, entries), FORMAT_VERSION, sigs

    # -- writing -----------------------------------------------------------------------------

    def ordered(self, on: bool) -> None:
        """Order writes by generation and check for foreign changes (while the lock is held) or stop."""
        with self._io:
            self._ordered = on
            self._generation = -1

    def write(self, state: State, generation: int = 0) -> bool:
        """Store ``state``: the files that differ from what is on disk. False if overtaken (skipped)."""
        with self._io:
            if self._ordered and generation <= self._generation:
                return False
            disk = self._disk
            migrating = disk is not None and self._format != FORMAT_VERSION
            if self._ordered:
                self._check_foreign(self.layout.header, disk, None)
            before = {} if disk is None or migrating else disk.entries
            changed = {n: e for n, e in state.entries.items() if before.get(n) != e}
            removed = [n for n in before if n not in state.entries]
            if self._ordered:
                for name in [*changed, *removed]:
                    self._check_foreign(self.layout.entry(name), disk, name)
            touched: list[Path] = []
            try:
                self._write(state, disk, changed, removed, migrating, touched)
            finally:
                for path in touched:  # whatever is there now is this process's doing
                    self._sigs[path] = signature(path)
            self._disk, self._format = state, FORMAT_VERSION
            if self._ordered:
                self._generation = generation
            self.writes += 1
            return True

    def _write(self, state: State, disk: State | None, changed: dict[str, StateEntry], removed: list[str],
               migrating: bool, touched: list[Path]) -> None:
        layout = self.layout
        header = layout.render_header(state)
        new_header = disk is None or migrating or disk.lineage != state.lineage \
            or disk.serial_base != state.serial_base
        touched.append(layout.header)
        if disk is None:  # born: the lineage exists before any entry refers to it
            make_dirs(layout.directory)
            self._replace_header(header)
        if changed or migrating:
            make_dirs(layout.entries)
            if migrating:  # leftovers of an interrupted migration are not entries of this state
                for path in layout.entry_files().values():
                    path.unlink()
            files = {layout.entry(n): layout.render_entry(e) for n, e in changed.items()}
            touched.extend(files)
            replace_files(layout.entries, files, backup=None if migrating else layout.backup)
        if removed:
            for name in removed:
                path = layout.entry(name)
                touched.append(path)
                for gone in (path, layout.backup(path)):
                    with contextlib.suppress(FileNotFoundError):
                        gone.unlink()
            fsync_dir(layout.entries)
        if new_header and disk is not None:
            if migrating:
                keep_backup(layout.header, layout.v1_backup)
            self._replace_header(header)

    def _replace_header(self, data: bytes) -> None:
        layout = self.layout
        if layout.header.exists():
            keep_backup(layout.header, layout.header_backup)
        atomic_write(layout.header, data)

    def _check_foreign(self, path: Path, disk: State | None, name: str | None) -> None:
        """``path`` must still be what this process last read or wrote; if its stat moved, its
        content must (someone rewrote the same text), else refuse to write over it."""
        if path not in self._sigs or signature(path) == self._sigs[path]:
            return
        on_disk: Header | State | StateEntry | None
        ours: Header | State | StateEntry | None
        if name is None:
            on_disk = self._header_now()
            ours = None if disk is None else Header(FORMAT_VERSION, disk.lineage, disk.serial_base) \
                if self._format == FORMAT_VERSION else disk
        else:
            on_disk = self.layout.parse_entry(path, path.read_bytes()) if path.exists() else None
            ours = disk.entries.get(name) if disk is not None else None
        if on_disk != ours:
            raise StateError(f"state file {path} was changed by someone else while this run held its lock; "
                             "refusing to write over it: check it, then run again")
        self._sigs[path] = signature(path)

    def _header_now(self) -> Header | State | None:
        try:
            raw = self.layout.header.read_bytes()
        except FileNotFoundError:
            return None
        return self.layout.parse_header(raw)  # a damaged header raises here, naming the backup

    # -- locking -----------------------------------------------------------------------------

    def holder(self) -> dict[str, Any] | None:
        """Holder info of the current (or last crashed) lock, if readable."""
        try:
            return LockInfo.model_validate_json(self.layout.info.read_bytes()).holder()
        except (OSError, ValidationError, ValueError):
            return None

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float) -> Iterator[LockInfo]:
        """Hold the OS lock (released by the OS if this process dies) and name the holder beside it."""
        layout = self.layout
        make_dirs(layout.directory)
        lock = filelock.FileLock(layout.lock, timeout=timeout, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise StateLocked(self.location, self.holder()) from None
        # Whoever held the lock before is gone: a temporary file of ours is a killed writer's.
        remove_stale_temps(layout.directory, f".{layout.header.name}.")
        remove_stale_temps(layout.entries, ".")
        info = LockInfo(id=str(uuid.uuid4()), operation=operation, pid=os.getpid(), host=socket.gethostname(),
                        user=whoami(), started=datetime.now(UTC).isoformat(timespec="seconds"))
        try:
            atomic_write(layout.info, info.model_dump_json().encode("utf-8"))
            yield info
        finally:
            with contextlib.suppress(OSError):
                layout.info.unlink()
            lock.release()


    def unlock(self, lock_id: str) -> str:
        """Remove the record of a lock whose process is gone; refuse while the OS lock is held."""
        layout = self.layout
        try:
            info: LockInfo | None = LockInfo.model_validate_json(layout.info.read_bytes())
        except (OSError, ValidationError, ValueError):
            info = None
        if info is None or info.id != lock_id:
            now = f"the lock record names {info.id}" if info is not None else "no lock is recorded"
            raise StateError(f"state {layout.header}: no lock {lock_id} ({now}); nothing was changed")
        who = ", ".join(f"{k}={v}" for k, v in info.holder().items() if k != "id")
        lock = filelock.FileLock(layout.lock, timeout=0, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            alive = f"process {info.pid} on this host" if info.host == socket.gethostname() \
                else f"a process on host {info.host}"
            raise StateError(f"state {layout.header}: lock {lock_id} ({who}) is held by {alive}: a file lock is "
                             "released by the operating system when its process ends, and cannot be taken from a "
                             f"live one; stop that run (kill {info.pid} on {info.host}) if it hangs") from None
        try:
            with contextlib.suppress(FileNotFoundError):
                layout.info.unlink()
        finally:
            lock.release()
        return (f"lock {lock_id} ({who}) was no longer held: its process had ended and the operating system "
                "had released it; its record was removed")

    # -- history -----------------------------------------------------------------------------

    def history(self) -> list[StateVersion]:
        """Only the current version: git keeps the earlier ones (``git log -p -- state/``)."""
        state = self.read()
        if state.serial == 0:
            return []
        stamps = [e.updated_at for e in state.entries.values() if e.updated_at is not None]
        return [StateVersion(version=None, serial=state.serial, lineage=state.lineage, entries=len(state.entries),
                             written_at=max(stamps) if stamps else None)]

    def version(self, serial: int) -> State:
        state = self.read()
        if state.serial == serial and serial != 0:
            return state
        raise StateError(f"state {self.layout.header} is at serial {state.serial}; the file backend keeps only "
                         f"the current state (and each file's previous copy, *.backup): earlier versions are in "
                         f"git (git log -p -- {self.layout.directory})")


def _assemble(header: Header, entries: dict[str, StateEntry]) -> State:
    return State(lineage=header.lineage, serial_base=header.serial_base, entries=entries,
                 serial=header.serial_base + sum(e.revision for e in entries.values()))
