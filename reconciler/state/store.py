"""The state store: read, write and lock a state, whatever keeps it (see ``backend.py``).

The file backend keeps ``state/reconcile-state.json`` as a header plus one file per entry
(``layout.py`` draws the files; ``filebackend.py`` lists what a crash cannot break).

Reads never repair anything: a damaged or conflicted state stops the run with an error naming
the file, because guessing here is how duplicates get created. Writes check lineage and serial,
so that two histories (or a concurrent writer) can never overwrite each other silently; each
entry's revision is raised by the store when its content changes (``State.stamped``), and the
serial follows from the revisions.

While a store holds the lock (``reconcile apply`` holds it for the whole run), no other process
writes the state, so the store keeps it in memory instead of re-reading it for every step, and
may coalesce *deferred* updates (see :meth:`StateStore.update`): an apply of a hundred
enrollments records ~900 steps, and a read, render and fsync per step on the event loop made such
an apply CPU-bound.

A deferred write that fails never stops a later record from being attempted (the record in hand
may be one CPS already acted on): the next written-through write or flush writes the complete
state; if it succeeds the earlier failure is logged as made good, if it fails the error names both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import StateError, StateLocked
from reconciler.state.backend import LockInfo, StateBackend
from reconciler.state.filebackend import FileBackend
from reconciler.state.model import State, StateEntry

log = logging.getLogger("reconciler.state")


def entry_change(name: str, fields: dict[str, Any]) -> Callable[[State], State]:
    """A state change setting ``fields`` on the existing entry ``name`` (for ``StateStore.update``)."""
    def change(state: State) -> State:
        entry = state.entry(name)
        if entry is None:
            raise StateError(f"no state entry named {name!r}")
        return state.with_entry(name, StateEntry.model_validate({**entry.model_dump(), **fields}))
    return change


def check_consistent(state: State, what: str) -> None:
    """``state``'s serial must be what its entries add up to (else it was edited by hand or damaged)."""
    expected = state.serial_base + sum(e.revision for e in state.entries.values())
    if state.serial != expected or state.serial < 1:
        raise StateError(f"{what} has serial {state.serial}, but its serial_base and its entries' revisions "
                         f"add up to {expected}: it is not a state reconcile wrote (do not edit serial, "
                         "serial_base or revision by hand)")


class _Held:
    """What a store knows while it holds the lock: no other process writes the state meanwhile."""

    def __init__(self) -> None:
        self.state: State | None = None
        """The state as this run sees it: the stored one, plus deferred records maybe not written yet."""
        self.generation = 0
        """Raised with every new ``state``: orders the writes of the loop thread and the worker."""
        self.dirty = False
        """Deferred records not yet handed to the writer."""
        self.scheduled_on: asyncio.AbstractEventLoop | None = None
        """The loop a hand-over is queued on (a loop that ended without running it does not count)."""
        self.pool: ThreadPoolExecutor | None = None
        """The write-behind worker: one thread, so batches land in order."""
        self.error: BaseException | None = None
        """A deferred write that failed and no complete write has made good yet."""
        self.error_generation = 0
        """The generation that failed write carried: a later write of it or beyond covers it."""


class StateStore:
    """Read, write and lock one state.

    ``update``/``save_entry``/``update_entry``/``remove_entry`` are read-modify-write under an
    in-process lock, so concurrent apply tasks (threads or asyncio tasks) can each record their
    step as soon as it is done. Hold :meth:`lock` around a whole apply to keep other processes out.
    """

    def __init__(self, path: Path | str, backend: StateBackend | None = None) -> None:
        self.path = Path(path)
        files = FileBackend(self.path)
        layout = files.layout
        self.backup_path = layout.header_backup
        self.lock_path = layout.lock
        self.info_path = layout.info
        self.entries_dir = layout.entries
        self.backend: StateBackend = backend if backend is not None else files
        self.location = self.backend.location
        """Where the state is, for messages: the header file, or the database workspace."""
        self._mutex = threading.RLock()
        self._held: _Held | None = None

    @property
    def writes(self) -> int:
        """Writes made by this store (a coalesced batch counts once); benchmarks report it."""
        return self.backend.writes

    # -- reading ---------------------------------------------------------------------------

    def read(self) -> State:
        """The stored state; a fresh state (new lineage, serial 0) when nothing is stored yet.

        While this store holds the lock: the state in memory, which is the stored one plus the
        deferred records not yet written.
        """
        with self._mutex:
            held = self._held
            if held is not None and held.state is not None:
                return held.state
            state = self.backend.read()
            if held is not None:
                held.state = state
            return state

    # -- writing ---------------------------------------------------------------------------

    def write(self, state: State) -> State:
        """Write ``state`` (entries whose content changed get their next revision); stored when
        this returns; returns what was written.

        Refused when the stored state belongs to another lineage or moved on since ``state`` was
        read (its serial differs): re-read and redo the change instead. Deferred records made
        before it are written with it (the whole state is written).
        """
        with self._mutex:
            held = self._held
            current = held.state if held is not None and held.state is not None else self.backend.read()
            self._check(current, state)
            new = state.stamped(current, datetime.now(UTC))
            generation = self._next_generation()
            self._write(new, generation)
            if held is not None:  # only once it is stored: a refused write changes nothing
                held.state, held.generation = new, generation
                held.dirty = False
            return new

    def replace(self, state: State) -> State:
        """Store ``state`` exactly as given, its entries' history included (a migration, a push into
        an empty store); refused when the stored state belongs to another lineage or when
        ``state``'s serial does not follow from its entries."""
        check_consistent(state, "the state to store")
        with self._mutex:
            held = self._held
            current = held.state if held is not None and held.state is not None else self.backend.read()
            if current.serial and current.lineage != state.lineage:
                raise StateError(f"state {self.location} has lineage {current.lineage}, not {state.lineage}: "
                                 "refusing to overwrite another state's history")
            generation = self._next_generation()
            self._write(state, generation)
            if held is not None:
                held.state, held.generation = state, generation
                held.dirty = False
            return state

    def _next_generation(self) -> int:
        held = self._held
        return held.generation + 1 if held is not None else 0

    def _check(self, current: State, state: State) -> None:
        if current.serial == 0:
            return  # nothing stored yet
        if current.lineage != state.lineage:
            raise StateError(f"state {self.location} has lineage {current.lineage}, not "
                             f"{state.lineage}: refusing to overwrite another state's history")
        if current.serial != state.serial:
            raise StateError(f"state {self.location} changed since it was read (serial "
                             f"{current.serial} stored, {state.serial} in hand); re-read it")

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
                held.state = new.stamped(state, datetime.now(UTC))
                held.generation += 1
                held.dirty = True
                return held.state
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
            held.dirty = False
            if held.pool is None:
                held.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-write-behind")
            held.pool.submit(self._write_behind, held)

    def _write_behind(self, held: _Held) -> None:
        # The newest state, not just this turn's: while the disk is slower than the loop, the
        # hand-overs queued behind this one then find their state written and skip (group commit).
        # Writing a record earlier than promised is always allowed.
        with self._mutex:
            newest, generation = held.state, held.generation
        if newest is None:
            return
        try:
            self.backend.write(newest, generation)  # skipped if it (or a later state) was written meanwhile
        except BaseException as exc:  # a worker has no caller: the next written-through write or flush reports it
            with self._mutex:
                if held.error is None:
                    held.error = exc
                held.error_generation = max(held.error_generation, generation)
            return
        with self._mutex:
            self._made_good(held, generation)

    def _write(self, state: State, generation: int) -> None:
        """Write ``state`` (complete: it carries every deferred record) through the backend.

        An earlier deferred failure never stops this attempt: the record in hand may be one CPS
        already acted on. If this write fails too, the error names both; if it succeeds, the
        earlier failure is made good (the complete state is on disk) and only logged.
        """
        held = self._held
        try:
            self.backend.write(state, generation)
        except BaseException as exc:
            earlier = held.error if held is not None else None
            if earlier is None:
                raise
            raise StateError(f"state {self.location}: write failed: {exc}; an earlier deferred write "
                             f"failed too: {earlier}") from exc
        if held is not None:
            self._made_good(held, generation)

    def _made_good(self, held: _Held, generation: int) -> None:
        """``generation`` is stored: a deferred failure it covers is reported and forgotten."""
        if held.error is not None and generation >= held.error_generation:
            log.warning("state %s: a deferred write failed (%s); a later write put the complete "
                        "state on disk, nothing was lost", self.location, held.error)
            held.error = None

    def _raise_deferred_error(self) -> None:
        held = self._held
        if held is not None and held.error is not None:
            error, held.error = held.error, None
            raise StateError(f"state {self.location}: a deferred write failed: {error}") from error

    def flush(self) -> None:
        """Put every deferred record on disk now (waits for the worker's write in progress)."""
        with self._mutex:
            held = self._held
            if held is None or held.state is None:
                return
            held.dirty = False
            self._write(held.state, held.generation)  # a no-op when the worker already wrote it
            self._raise_deferred_error()  # a worker failure this write did not cover (none expected)

    def save_entry(self, name: str, entry: StateEntry) -> State:
        """Bind ``name`` to ``entry`` and write at once."""
        return self.update(lambda s: s.with_entry(name, entry))

    def update_entry(self, name: str, **fields: Any) -> State:
        """Change some fields of an existing entry and write at once (``intent=None`` clears it)."""
        return self.update(entry_change(name, fields))

    def remove_entry(self, name: str) -> State:
        """Forget ``name`` and write at once (its files go with it)."""
        return self.update(lambda s: s.without_entry(name))

    # -- locking ---------------------------------------------------------------------------

    def holder(self) -> dict[str, Any] | None:
        """Holder info of the current (or last crashed) lock, if readable."""
        return self.backend.holder()

    def unlock(self, lock_id: str) -> str:
        """Free the lock ``lock_id`` whose holder is gone or hung (``reconcile state unlock``)."""
        return self.backend.unlock(lock_id)

    @contextlib.contextmanager
    def lock(self, operation: str = "apply", timeout: float = 0) -> Iterator[LockInfo]:
        """Hold the state lock for the block; fail fast (or after ``timeout`` s) naming the holder.

        Before waiting, says who it waits for (a warning on the ``reconciler.state`` logger).
        """
        with contextlib.ExitStack() as stack:
            try:
                info = stack.enter_context(self.backend.lock(operation, 0))
            except StateLocked as busy:
                if timeout <= 0:
                    raise
                who = ", ".join(f"{k}={v}" for k, v in busy.holder.items()) or "unknown holder"
                log.warning("state %s is locked (%s); waiting up to %gs for it", self.location, who, timeout)
                info = stack.enter_context(self.backend.lock(operation, timeout))
            yield from self._holding(info)

    def _holding(self, info: LockInfo) -> Iterator[LockInfo]:
        held = _Held()
        with self._mutex:
            self._held = held
            self.backend.ordered(True)
        try:
            yield info
        finally:
            try:
                self.flush()  # deferred records land before anyone else may read or write the state
            finally:
                if held.pool is not None:
                    held.pool.shutdown(wait=True)  # outside the mutex: a failing worker takes none
                with self._mutex:
                    self._held = None
                    self.backend.ordered(False)
