"""The contract between :class:`reconciler.state.store.StateStore` and where a state is kept.

The store owns everything that does not depend on the medium: the in-process mutex, the state
held in memory while the lock is held, deferred records and their write-behind worker, the
lineage and serial checks, and each entry's history (``State.stamped``). A backend owns the
medium: how a state is laid out, how a write is made durable, how the lock is taken and who
holds it, and which earlier versions it keeps. The file backend (``filebackend.py``) keeps a
state in the repository; the PostgreSQL backend (``pgbackend.py``) keeps the same promises with
transactions, and advisory locks that die with their session.

=========================  ===================================================================
method                     promise
=========================  ===================================================================
``read()``                 the stored state with ``serial`` = ``serial_base`` + the entries'
                           revisions, or ``State()`` (serial 0) when nothing is stored; a
                           damaged or conflicted store raises ``StateError`` naming what and
                           where, and is never repaired
``write(state, gen)``      stores ``state`` (its entries' history already stamped) so that a
                           crash leaves each entry old or new; on the medium when it returns;
                           while ``ordered``, skips (returns False) a ``gen`` not newer than the
                           last one written, and refuses to write over a change made by someone
                           else since this process last read or wrote it
``ordered(on)``            on while this process holds the lock (nobody else writes), off after
``lock(op, timeout)``      context manager: hold the exclusive lock, released if the holder
                           dies; ``StateLocked`` naming the holder on timeout
``holder()``               who holds (or last held) the lock, if known; its ``id`` is what
                           ``unlock`` takes
``unlock(id)``             frees the lock ``id`` whose holder is gone or hung, or refuses saying
                           why; returns what it did, in a sentence
``history()``              the versions kept, newest first (the file backend: the current one
                           only; git is its history)
``version(serial)``        the stored state as it was at ``serial`` (a ``StateError`` when that
                           version is not kept)
``location``               where the state is, for messages (never a secret)
``writes``                 how many writes were made (benchmarks report it)
=========================  ===================================================================
"""

from __future__ import annotations

import getpass
import os
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from reconciler.state.model import State


def whoami() -> str:
    """The user name a lock's holder info shows."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())


class LockInfo(BaseModel):
    """Who holds the state lock, kept beside it for the next run's error message."""

    model_config = ConfigDict(frozen=True)

    id: str
    operation: str
    pid: int
    host: str
    user: str
    started: str

    def holder(self) -> dict[str, Any]:
        return {"operation": self.operation, "pid": self.pid, "host": self.host, "user": self.user,
                "started": self.started, "id": self.id}


class StateVersion(BaseModel):
    """One stored version of a state, as ``reconcile state history`` lists it."""

    model_config = ConfigDict(frozen=True)

    version: int | None
    """Counts the writes of this state's store (1: the first; None: not counted); not the serial."""
    serial: int
    lineage: str
    entries: int
    written_at: datetime | None = None
    written_by: dict[str, Any] | None = None
    """The lock holder that wrote it (operation, user, host, pid), when the write held the lock."""


class StateBackend(Protocol):
    """Where a state is kept (see the module docstring for each method's promise)."""

    writes: int

    @property
    def location(self) -> str: ...

    def read(self) -> State: ...

    def write(self, state: State, generation: int = 0) -> bool: ...

    def ordered(self, on: bool) -> None: ...

    def lock(self, operation: str, timeout: float) -> AbstractContextManager[LockInfo]: ...

    def holder(self) -> dict[str, Any] | None: ...

    def unlock(self, lock_id: str) -> str: ...

    def history(self) -> list[StateVersion]: ...

    def version(self, serial: int) -> State: ...
