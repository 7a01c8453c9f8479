"""The contract between :class:`reconciler.state.store.StateStore` and where a state is kept.

The store owns everything that does not depend on the medium: the in-process mutex, the state
held in memory while the lock is held, deferred records and their write-behind worker, the
lineage and serial checks, and each entry's history (``State.stamped``). A backend owns the
medium: how a state is laid out, how a write is made durable, how the lock is taken and who
holds it. The file backend (``filebackend.py``) is the one there is; a database backend keeps
the same promises with rows and advisory locks that die with their session.

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
``holder()``               who holds (or last held) the lock, if known
``writes``                 how many writes were made (benchmarks report it)
=========================  ===================================================================
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from reconciler.state.model import State


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
                "started": self.started}


class StateBackend(Protocol):
    """Where a state is kept (see the module docstring for each method's promise)."""

    writes: int

    def read(self) -> State: ...

    def write(self, state: State, generation: int = 0) -> bool: ...

    def ordered(self, on: bool) -> None: ...

    def lock(self, operation: str, timeout: float) -> AbstractContextManager[LockInfo]: ...

    def holder(self) -> dict[str, Any] | None: ...
