"""The local state store: one JSON file, written atomically, guarded by a lock that names its holder.

Files, for a state at ``state/reconcile-state.json``::

    state/reconcile-state.json          the state (canonical JSON)
    state/reconcile-state.json.backup   the previous copy, refreshed on every write
    state/reconcile-state.json.lock     the OS lock (filelock; released by the OS if the holder dies)
    state/reconcile-state.json.lock.info  who holds the lock: pid, host, user, operation, started

Reads never repair anything: a truncated or corrupt file stops the run with an error naming the
backup, because guessing here is how duplicates get created. Writes check lineage and serial so
that two histories (or a concurrent writer) can never overwrite each other silently.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.errors import StateError, StateLocked
from reconciler.state.model import FORMAT_VERSION, State, StateEntry


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


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse O_RDONLY on directories.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
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
    _fsync_dir(path.parent)


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

    # -- reading ---------------------------------------------------------------------------

    def read(self) -> State:
        """The state on disk; a fresh state (new lineage, serial 0) when there is no file yet."""
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
        """Write ``state`` with the serial bumped; returns what was written.

        Refused when the file on disk belongs to another lineage or moved on since ``state`` was
        read (its serial differs): re-read and redo the change instead.
        """
        with self._mutex:
            current = self._current()
            if current is not None:
                if current.lineage != state.lineage:
                    raise StateError(f"state file {self.path} has lineage {current.lineage}, not "
                                     f"{state.lineage}: refusing to overwrite another state's history")
                if current.serial != state.serial:
                    raise StateError(f"state file {self.path} changed since it was read (serial "
                                     f"{current.serial} on disk, {state.serial} in hand); re-read it")
            new = state.model_copy(update={"serial": state.serial + 1})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if current is not None:
                _atomic_write(self.backup_path, self.path.read_bytes())
            _atomic_write(self.path, new.to_json().encode("utf-8"))
            return new

    def _current(self) -> State | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return self._parse(raw)

    def update(self, change: Callable[[State], State]) -> State:
        """Read, apply ``change``, write (only if something changed); returns the resulting state."""
        with self._mutex:
            state = self.read()
            new = change(state)
            if new == state:
                return state
            return self.write(new)

    def save_entry(self, name: str, entry: StateEntry) -> State:
        """Bind ``name`` to ``entry`` and write at once."""
        return self.update(lambda s: s.with_entry(name, entry))

    def update_entry(self, name: str, **fields: Any) -> State:
        """Change some fields of an existing entry and write at once (``intent=None`` clears it)."""
        def change(state: State) -> State:
            entry = state.entry(name)
            if entry is None:
                raise StateError(f"no state entry named {name!r}")
            return state.with_entry(name, StateEntry.model_validate({**entry.model_dump(), **fields}))
        return self.update(change)

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.lock_path, timeout=timeout, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise StateLocked(str(self.path), self.holder()) from None
        info = LockInfo(id=str(uuid.uuid4()), operation=operation, pid=os.getpid(),
                        host=socket.gethostname(), user=_user(),
                        started=datetime.now(UTC).isoformat(timespec="seconds"))
        try:
            _atomic_write(self.info_path, info.model_dump_json().encode("utf-8"))
            yield info
        finally:
            with contextlib.suppress(OSError):
                self.info_path.unlink()
            lock.release()
