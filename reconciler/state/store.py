"""The local state store: one JSON file, written atomically, guarded by a lock that names its holder.

Files, for a state at ``state/reconcile-state.json``::

    state/reconcile-state.json          the state (canonical JSON)
    state/reconcile-state.json.backup   the previous copy, refreshed on every write
    state/reconcile-state.json.lock     the OS lock (filelock; released by the OS if the holder dies)
    state/reconcile-state.json.lock.info  who holds the lock: pid, host, user, operation, started

Reads never repair anything: a truncated or corrupt file stops the run with an error naming the
backup, because guessing here is how duplicates get created. Writes check lineage and serial so
that two histories (or a concurrent writer) can never overwrite each other silently.

While a store holds the lock (``reconcile apply`` holds it for the whole run), no other process
writes the file, so the store keeps the state in memory instead of re-reading it for every step,
and may coalesce *deferred* updates (see :meth:`StateStore.update`): an apply of a hundred
enrollments records ~900 steps, and a whole-file read, render and fsync per step on the event
loop made such an apply CPU-bound and quadratic in the number of entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.errors import StateError, StateLocked
from reconciler.state.files import StateFile, atomic_write, make_dirs, remove_stale_temps, signature
from reconciler.state.model import FORMAT_VERSION, State, StateEntry

log = logging.getLogger("reconciler.state")

_FILE_KEYS = ("format_version", "lineage", "serial", "entries")


class LockInfo(BaseModel):
    """Who holds the state lock, written next to it for the next run's error message."""

    model_config = ConfigDict(frozen=True)

    id: str
    operation: str
    pid: int
    host: str
    user: str
    started: str

    def holder(self) -> dict[str, Any]:
        return {"operation": self.operation, "pid": self.pid, "host": self.host, "user": self.user,
                "started": self.started}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())


def entry_change(name: str, fields: dict[str, Any]) -> Callable[[State], State]:
    """A state change setting ``fields`` on the existing entry ``name`` (for ``StateStore.update``)."""
    def change(state: State) -> State:
        entry = state.entry(name)
        if entry is None:
            raise StateError(f"no state entry named {name!r}")
        return state.with_entry(name, StateEntry.model_validate({**entry.model_dump(), **fields}))
    return change


class _Held:
    """What a store knows while it holds the lock: no other process writes the file meanwhile."""

    def __init__(self) -> None:
        self.state: State | None = None
        """The state as this run sees it: the file's, plus deferred records maybe not written yet."""
        self.dirty = False
        """Deferred records not yet handed to the writer."""
        self.scheduled_on: asyncio.AbstractEventLoop | None = None
        """The loop a hand-over is queued on (a loop that ended without running it does not count)."""
        self.pool: ThreadPoolExecutor | None = None
        """The write-behind worker: one thread, so batches land in order."""
        self.error: BaseException | None = None
        """A deferred write that failed and no complete write has made good yet."""
        self.error_serial = 0
        """The serial that failed write carried: a later write of this serial or beyond covers it."""


class StateStore:
    """Read, write and lock one state file.

    ``update``/``save_entry``/``update_entry``/``remove_entry`` are read-modify-write under an
    in-process lock, so concurrent apply tasks (threads or asyncio tasks) can each record their
    step as soon as it is done. Hold :meth:`lock` around a whole apply to keep other processes out.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.backup_path = self.path.with_name(self.path.name + ".backup")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.info_path = self.path.with_name(self.path.name + ".lock.info")
        self._mutex = threading.RLock()
        self._held: _Held | None = None
        self._file = StateFile(self.path, self.backup_path, self._foreign_file)

    @property
    def writes(self) -> int:
        """State files written by this store (a coalesced batch counts once); benchmarks report it."""
        return self._file.writes

    # -- reading ---------------------------------------------------------------------------

    def read(self) -> State:
        """The state on disk; a fresh state (new lineage, serial 0) when there is no file yet.

        While this store holds the lock: the state in memory, which is the file's plus the
        deferred records not yet written.
        """
        with self._mutex:
            held = self._held
            if held is not None and held.state is not None:
                return held.state
            state = self._read_file()
            if held is not None:
                held.state = state
                self._file.known(signature(self.path), state)
            return state

    def _read_file(self) -> State:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            if self.backup_path.exists():
                raise StateError(
                    f"state file {self.path} is missing but its backup {self.backup_path} exists; "
                    f"restore it (cp {self.backup_path} {self.path}) or remove the backup to start afresh"
                ) from None
            return State()
        return self._parse(raw)

    def _parse(self, raw: bytes) -> State:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self._corrupt(f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise self._corrupt("not a JSON object")
        version = data.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise StateError(f"state file {self.path} has format version {version}; this reconciler "
                             f"reads up to {FORMAT_VERSION}: upgrade reconciler")
        # Every file this tool writes has all four; defaulting a missing one would mint a new
        # lineage for an emptied file, and the plan would then offer to adopt the whole account.
        missing = [key for key in _FILE_KEYS if key not in data]
        if missing:
            raise self._corrupt(f"missing {', '.join(missing)}")
        try:
            return State.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise self._corrupt(f"{where}: {first['msg']}") from None

    def _corrupt(self, why: str) -> StateError:
        backup = (f"the previous copy is {self.backup_path}" if self.backup_path.exists()
                  else f"no backup exists ({self.backup_path})")
        return StateError(f"state file {self.path} is unreadable: {why}; it was left untouched and "
                          f"{backup}: inspect both and restore by hand")

    # -- writing ---------------------------------------------------------------------------

    def write(self, state: State) -> State:
        """Write ``state`` with the serial bumped; on disk when this returns; returns what was written.

        Refused when the file on disk belongs to another lineage or moved on since ``state`` was
        read (its serial differs): re-read and redo the change instead. Deferred records made
        before it are written with it (the whole state is written).
        """
        with self._mutex:
            held = self._held
            current = held.state if held is not None and held.state is not None else self._current()
            self._check(current, state)
            new = state.model_copy(update={"serial": state.serial + 1})
            self._write_file(new)
            if held is not None:  # only once it is on disk: a refused write changes nothing
                held.state = new
                held.dirty = False
            return new

    def _check(self, current: State | None, state: State) -> None:
        if current is None:
            return
        if current.lineage != state.lineage:
            raise StateError(f"state file {self.path} has lineage {current.lineage}, not "
                             f"{state.lineage}: refusing to overwrite another state's history")
        if current.serial != state.serial:
            raise StateError(f"state file {self.path} changed since it was read (serial "
                             f"{current.serial} on disk, {state.serial} in hand); re-read it")

    def _foreign_file(self, path: Path, newest: tuple[str, int] | None) -> None:
        """The file changed under the held lock, not by this store: refuse to write over it,
        naming the damage, unless it still holds the state this store last wrote."""
        on_disk = self._read_file()  # a damaged file raises here, naming the backup
        if newest != (on_disk.lineage, on_disk.serial):
            raise StateError(f"state file {path} was changed by someone else while this run held its lock "
                             f"(serial {on_disk.serial} on disk); refusing to write over it: check it, then "
                             "run again")

    def _current(self) -> State | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return self._parse(raw)

    def update(self, change: Callable[[State], State], *, defer: bool = False) -> State:
        """Read, apply ``change``, write (only if something changed); returns the resulting state.

        Written before this returns, unless ``defer`` and this store holds the lock and an event
        loop runs in this thread: then the result is kept in memory and handed at the end of the
        current loop turn to a worker thread that writes it (many deferred updates of one turn
        become one write, and the loop does not wait for the disk). A deferred record reaches the
        disk by then, or with the next non-deferred write, :meth:`flush` or the lock's release,
        whichever is first. Defer only records whose loss to a crash equals crashing a moment
        earlier; anything that must be on disk before a later action (an intent) must not be.
        """
        with self._mutex:
            state = self.read()
            new = change(state)
            if new == state:
                return state
            held = self._held
            if defer and held is not None and self._schedule(held):
                self._check(state, new)
                new = new.model_copy(update={"serial": state.serial + 1})
                held.state = new
                held.dirty = True
                return new
            return self.write(new)

    def _schedule(self, held: _Held) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if held.scheduled_on is not loop:
            held.scheduled_on = loop
            loop.call_soon(self._hand_over, held)
        return True

    def _hand_over(self, held: _Held) -> None:
        """End of a loop turn: give the coalesced state to the write-behind worker."""
        with self._mutex:
            held.scheduled_on = None
            if self._held is not held or not held.dirty or held.state is None:
                return
            snapshot, held.dirty = held.state, False
            if held.pool is None:
                held.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-write-behind")
            held.pool.submit(self._write_behind, held, snapshot)

    def _write_behind(self, held: _Held, snapshot: State) -> None:
        # The newest state, not just this turn's: while the disk is slower than the loop, the
        # hand-overs queued behind this one then find their state written and skip (group commit).
        # Writing a record earlier than promised is always allowed.
        newest = held.state if held.state is not None else snapshot
        try:
            self._file.write(newest)  # skipped if it (or a later state) was written meanwhile
        except BaseException as exc:  # a worker has no caller: the next written-through write or flush reports it
            with self._mutex:
                if held.error is None:
                    held.error = exc
                held.error_serial = max(held.error_serial, newest.serial)
            return
        with self._mutex:
            self._made_good(held, newest)

    def _write_file(self, state: State) -> None:
        """Write ``state`` (complete: it carries every deferred record) through the file writer.

        An earlier deferred failure never stops this attempt: the record in hand may be one CPS
        already acted on. If this write fails too, the error names both; if it succeeds, the
        earlier failure is made good (the complete state is on disk) and only logged.
        """
        held = self._held
        try:
            self._file.write(state)
        except BaseException as exc:
            earlier = held.error if held is not None else None
            if earlier is None:
                raise
            raise StateError(f"state file {self.path}: write failed: {exc}; an earlier deferred write "
                             f"failed too: {earlier}") from exc
        if held is not None:
            self._made_good(held, state)

    def _made_good(self, held: _Held, written: State) -> None:
        """``written`` is on disk: a deferred failure it covers is reported and forgotten."""
        if held.error is not None and written.serial >= held.error_serial:
            log.warning("state file %s: a deferred write failed (%s); a later write put the complete "
                        "state on disk, nothing was lost", self.path, held.error)
            held.error = None

    def _raise_deferred_error(self) -> None:
        held = self._held
        if held is not None and held.error is not None:
            error, held.error = held.error, None
            raise StateError(f"state file {self.path}: a deferred write failed: {error}") from error

    def flush(self) -> None:
        """Put every deferred record on disk now (waits for the worker's write in progress)."""
        with self._mutex:
            held = self._held
            if held is None or held.state is None:
                return
            held.dirty = False
            self._write_file(held.state)  # a no-op when the worker already wrote this state
            self._raise_deferred_error()  # a worker failure this write did not cover (none expected)

    def save_entry(self, name: str, entry: StateEntry) -> State:
        """Bind ``name`` to ``entry`` and write at once."""
        return self.update(lambda s: s.with_entry(name, entry))

    def update_entry(self, name: str, **fields: Any) -> State:
        """Change some fields of an existing entry and write at once (``intent=None`` clears it)."""
        return self.update(entry_change(name, fields))

    def remove_entry(self, name: str) -> State:
        """Forget ``name`` and write at once."""
        return self.update(lambda s: s.without_entry(name))

    # -- locking ---------------------------------------------------------------------------

    def holder(self) -> dict[str, Any] | None:
        """Holder info of the current (or last crashed) lock, if readable."""
        try:
            return LockInfo.model_validate_json(self.info_path.read_bytes()).holder()
        except (OSError, ValidationError, ValueError):
            return None

    @contextlib.contextmanager
    def lock(self, operation: str = "apply", timeout: float = 0) -> Iterator[LockInfo]:
        """Hold the state lock for the block; fail fast (or after ``timeout`` s) naming the holder."""
        make_dirs(self.path.parent)
        lock = filelock.FileLock(self.lock_path, timeout=timeout, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise StateLocked(str(self.path), self.holder()) from None
        # Whoever held the lock before is gone: a temporary file of ours is a killed writer's.
        remove_stale_temps(self.path.parent, self.path.name)
        info = LockInfo(id=str(uuid.uuid4()), operation=operation, pid=os.getpid(),
                        host=socket.gethostname(), user=_user(),
                        started=datetime.now(UTC).isoformat(timespec="seconds"))
        try:
            atomic_write(self.info_path, info.model_dump_json().encode("utf-8"))
            yield from self._holding(info)
        finally:
            with contextlib.suppress(OSError):
                self.info_path.unlink()
            lock.release()

    def _holding(self, info: LockInfo) -> Iterator[LockInfo]:
        held = _Held()
        with self._mutex:
            self._held = held
            self._file.ordered(True)
        try:
            yield info
        finally:
            try:
                self.flush()  # deferred records land before anyone else may read or write the file
            finally:
                if held.pool is not None:
                    held.pool.shutdown(wait=True)  # outside the mutex: a failing worker takes none
                with self._mutex:
                    self._held = None
                    self._file.ordered(False)
