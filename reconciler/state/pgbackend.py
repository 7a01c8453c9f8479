"""The PostgreSQL backend: a state kept in a database shared by runners, one workspace per state.

The same promises as the file backend (``backend.py``), kept with a database's tools:

=============================================  ================================================
guarantee                                      how
=============================================  ================================================
a write is all or nothing                      one transaction: the changed entries, the new
                                               version row and the workspace row commit
                                               together, or none of them does
a write is durable when it returns             it returns after COMMIT (the server's fsync)
nobody's change is written over                every write locks the workspace row and checks
                                               its version is the one this process last read
                                               or wrote, else refuses (lock held or not)
an older state never replaces a newer one      while ``ordered``, writes carry the store's
                                               generation; an overtaken one is skipped
one run at a time per workspace                a session advisory lock, taken on the session
                                               the run writes through: it dies with the
                                               session (process killed, network cut: TCP
                                               keepalives end it), no cleanup by hand
a lost session stops the run                   writes go through the lock's session only and
                                               never reconnect: once it is gone (the lock with
                                               it), every write fails, naming the cause
every version kept                             each write adds a ``versions`` row (serial,
                                               time, holder) naming the entry versions it
                                               holds; ``history`` and ``version`` read them
workspaces are isolated                        every statement is scoped to one workspace id;
                                               each has its own lock
the DSN never shows                            ``pgconnect.py``
=============================================  ================================================

The tables and their versions are ``pgschema.py``'s.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from reconciler.errors import StateError, StateLocked
from reconciler.state.backend import LockInfo, StateVersion, whoami
from reconciler.state.model import State, StateEntry
from reconciler.state.pgconnect import Dsn, connect, driver, failure, lost
from reconciler.state.pgschema import ensure_schema, ident, installed_version, lock_space

if TYPE_CHECKING:
    import psycopg

class PostgresBackend:
    """Reads, writes, locks and keeps the history of one workspace's state (see the module docstring)."""

    def __init__(self, dsn: Dsn, workspace: str, schema: str = "reconcile") -> None:
        self.dsn, self.workspace, self.schema = dsn, workspace, schema
        self._s = ident(schema)
        self._space = lock_space(schema)
        self.location = f"postgres workspace {workspace!r}"
        self._io = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        """The lock's session while this process holds the lock (every read and write goes through it)."""
        self._broken: str | None = None
        """Why the lock's session is gone, once it is."""
        self._info: LockInfo | None = None
        self._ws: int | None = None
        self._ordered = False
        self._generation = -1
        self._disk: State | None = None
        self._version = 0
        """The workspace version this process last read or wrote (0: nothing stored)."""
        self.writes = 0

    # -- sessions ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """The lock's session, else a short one; driver errors become masked StateErrors."""
        psycopg = driver()
        if self._broken is not None:
            raise StateError(f"{self.location}: {doing}: the session holding the state lock was lost earlier "
                             f"({self._broken}); nothing more is written by this run: run it again")
        held = self._conn
        conn = held if held is not None else connect(self.dsn, self.location)
        try:
            yield conn
        except psycopg.Error as exc:
            error = failure(exc, self.dsn, f"{self.location}: {doing}")
            if held is not None and lost(exc):
                self._broken = str(error).removeprefix(f"{self.location}: ")
                raise StateError(f"{error}; the session holding the state lock is gone, and the lock with it: "
                                 "this run stops here (every write before this one is stored); run it again once "
                                 "the database is reachable") from None
            raise error from None
        finally:
            if held is None:
                conn.close()

    def _workspace(self, conn: psycopg.Connection[Any], create: bool) -> int | None:
        if self._ws is not None:
            return self._ws
        if create:
            ensure_schema(conn, self.schema)
            conn.execute(f"INSERT INTO {self._s}.workspaces (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                         (self.workspace,))
        elif installed_version(conn, self.schema) is None:
            return None
        row = conn.execute(f"SELECT id FROM {self._s}.workspaces WHERE name = %s", (self.workspace,)).fetchone()
        if row is not None:
            self._ws = int(row[0])
        return self._ws

    # -- reading -----------------------------------------------------------------------------

    def read(self) -> State:
        """The stored state, or a fresh one (serial 0) when the workspace holds none."""
        with self._io, self._session("cannot read the state") as conn:
            ws = self._workspace(conn, create=False)
            state, version = (State(), 0) if ws is None else self._load(conn, ws)
            self._disk, self._version = (state if state.serial else None), version
            return state

    def _load(self, conn: psycopg.Connection[Any], ws: int) -> tuple[State, int]:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = conn.execute(f"SELECT lineage, serial_base, serial, version FROM {self._s}.workspaces "
                               "WHERE id = %s", (ws,)).fetchone()
            if row is None or row[3] == 0:
                return State(), 0
            bodies = conn.execute(
                f"SELECT e.name, v.body FROM {self._s}.entries e JOIN {self._s}.entry_versions v "
                "ON v.id = e.entry_version_id WHERE e.workspace_id = %s ORDER BY e.name", (ws,)).fetchall()
        lineage, base, serial, version = row
        state = self._assemble(lineage, base, {name: body for name, body in bodies}, f"version {version}")
        if state.serial != serial:
            raise self._corrupt(f"its serial is {serial} but its entries add up to {state.serial}")
        return state, int(version)

    def _assemble(self, lineage: str, base: int, bodies: dict[str, Any], what: str) -> State:
        entries = {}
        for name, body in bodies.items():
            try:
                entries[name] = StateEntry.model_validate(body)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise self._corrupt(f"{what}: entry {name!r}: {'.'.join(map(str, first['loc']))}: "
                                    f"{first['msg']}") from None
        return State(lineage=lineage, serial_base=base, entries=entries,
                     serial=base + sum(e.revision for e in entries.values()))

    def _corrupt(self, why: str) -> StateError:
        return StateError(f"state {self.location} is unreadable: {why}; it was left untouched: its earlier "
                          "versions are listed by `reconcile state history`")

    # -- writing -----------------------------------------------------------------------------

    def ordered(self, on: bool) -> None:
        with self._io:
            self._ordered = on
            self._generation = -1

    def write(self, state: State, generation: int = 0) -> bool:
        """Store ``state`` in one transaction; False if overtaken (skipped)."""
        from psycopg.types.json import Jsonb

        with self._io:
            if self._ordered and generation <= self._generation:
                return False
            if self._disk is not None and self._disk == state and self._ordered:
                # Nothing changed since this run's last write (a flush at the lock's release): no
                # new version. Only while ordered: nobody else wrote meanwhile.
                self._generation = generation
                return True
            with self._session("cannot write the state") as conn:
                ws = self._workspace(conn, create=True)
                assert ws is not None
                with conn.transaction():
                    row = conn.execute(f"SELECT version FROM {self._s}.workspaces WHERE id = %s FOR UPDATE",
                                       (ws,)).fetchone()
                    stored = int(row[0]) if row is not None else 0
                    if stored != self._version:
                        raise StateError(f"state {self.location} was changed by someone else (version {stored} "
                                         f"stored, this run last saw {self._version}); refusing to write over it: "
                                         "check it (reconcile state history), then run again")
                    before = self._disk.entries if self._disk is not None and stored else {}
                    ids = dict(conn.execute(f"SELECT name, entry_version_id FROM {self._s}.entries "
                                            "WHERE workspace_id = %s", (ws,)).fetchall())
                    for name, entry in state.entries.items():
                        if before.get(name) == entry and name in ids:
                            continue
                        found = conn.execute(
                            f"INSERT INTO {self._s}.entry_versions (workspace_id, name, body) VALUES (%s, %s, %s) "
                            "RETURNING id", (ws, name, Jsonb(entry.model_dump(mode="json")))).fetchone()
                        assert found is not None
                        ids[name] = int(found[0])
                        conn.execute(f"INSERT INTO {self._s}.entries (workspace_id, name, entry_version_id) "
                                     "VALUES (%s, %s, %s) ON CONFLICT (workspace_id, name) DO UPDATE "
                                     "SET entry_version_id = excluded.entry_version_id", (ws, name, ids[name]))
                    for name in [n for n in ids if n not in state.entries]:
                        del ids[name]
                        conn.execute(f"DELETE FROM {self._s}.entries WHERE workspace_id = %s AND name = %s",
                                     (ws, name))
                    version = stored + 1
                    holder = self._info.holder() if self._info is not None else None
                    conn.execute(
                        f"INSERT INTO {self._s}.versions (workspace_id, version, serial, lineage, serial_base, "
                        "entries, written_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (ws, version, state.serial, state.lineage, state.serial_base, Jsonb(ids),
                         Jsonb(holder) if holder else None))
                    conn.execute(f"UPDATE {self._s}.workspaces SET lineage = %s, serial_base = %s, serial = %s, "
                                 "version = %s WHERE id = %s",
                                 (state.lineage, state.serial_base, state.serial, version, ws))
            self._disk, self._version = state, version
            if self._ordered:
                self._generation = generation
            self.writes += 1
            return True

    # -- history -----------------------------------------------------------------------------

    def history(self) -> list[StateVersion]:
        """Every version written, newest first."""
        with self._io, self._session("cannot read the history") as conn:
            ws = self._workspace(conn, create=False)
            if ws is None:
                return []
            rows = conn.execute(
                f"SELECT version, serial, lineage, (SELECT count(*) FROM jsonb_object_keys(entries)), written_at, "
                f"written_by FROM {self._s}.versions WHERE workspace_id = %s ORDER BY version DESC", (ws,)).fetchall()
        return [StateVersion(version=v, serial=s, lineage=lineage, entries=n, written_at=at, written_by=by)
                for v, s, lineage, n, at, by in rows]

    def version(self, serial: int) -> State:
        """The state as written at ``serial`` (the latest version with that serial)."""
        with self._io, self._session("cannot read the history") as conn:
            ws = self._workspace(conn, create=False)
            row = None if ws is None else conn.execute(
                f"SELECT version, lineage, serial_base, entries FROM {self._s}.versions "
                "WHERE workspace_id = %s AND serial = %s ORDER BY version DESC LIMIT 1", (ws, serial)).fetchone()
            if row is None:
                raise StateError(f"state {self.location} has no version with serial {serial} "
                                 "(reconcile state history lists them)")
            version, lineage, base, ids = row
            bodies = dict(conn.execute(f"SELECT id, body FROM {self._s}.entry_versions WHERE id = ANY(%s)",
                                       (list(ids.values()),)).fetchall())
        return self._assemble(lineage, base, {name: bodies[i] for name, i in ids.items()}, f"version {version}")

    # -- locking -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float) -> Iterator[LockInfo]:
        """Hold the workspace's advisory lock on a session kept for the block (every write uses it)."""
        from psycopg.types.json import Jsonb

        psycopg = driver()
        conn = connect(self.dsn, self.location)
        try:
            ws = self._workspace(conn, create=True)
            assert ws is not None
            if not self._acquire(conn, ws, timeout):
                raise StateLocked(self.location, self._holder(conn, ws))
            info = LockInfo(id=str(uuid.uuid4()), operation=operation, pid=os.getpid(), host=socket.gethostname(),
                            user=whoami(), started=datetime.now(UTC).isoformat(timespec="seconds"))
            conn.execute(f"INSERT INTO {self._s}.locks (workspace_id, lock_id, info, backend_pid) "
                         "VALUES (%s, %s, %s, pg_backend_pid()) ON CONFLICT (workspace_id) DO UPDATE SET "
                         "lock_id = excluded.lock_id, info = excluded.info, backend_pid = excluded.backend_pid",
                         (ws, info.id, Jsonb(info.model_dump())))
        except psycopg.Error as exc:
            conn.close()
            raise failure(exc, self.dsn, f"{self.location}: cannot take the state lock") from None
        except BaseException:
            conn.close()
            raise
        with self._io:
            self._conn, self._info, self._broken = conn, info, None
        try:
            yield info
        finally:
            with self._io:
                self._conn = self._info = None
            try:  # a session already gone took its lock with it
                with contextlib.suppress(psycopg.Error):
                    conn.execute(f"DELETE FROM {self._s}.locks WHERE workspace_id = %s AND lock_id = %s",
                                 (ws, info.id))
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (self._space, ws))
            finally:
                conn.close()

    def _acquire(self, conn: psycopg.Connection[Any], ws: int, timeout: float) -> bool:
        psycopg = driver()
        if timeout <= 0:
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (self._space, ws)).fetchone()
            return bool(row and row[0])
        conn.execute(f"SET lock_timeout = {max(1, int(timeout * 1000))}")  # 0 would mean: wait forever
        try:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (self._space, ws))
            return True
        except psycopg.errors.LockNotAvailable:
            return False
        finally:
            conn.execute("SET lock_timeout = 0")

    def _holder(self, conn: psycopg.Connection[Any], ws: int) -> dict[str, Any] | None:
        """The recorded holder, if its session still holds the lock (a dead one's record is stale)."""
        row = conn.execute(
            f"SELECT l.info FROM {self._s}.locks l WHERE l.workspace_id = %s AND EXISTS (SELECT 1 FROM pg_locks p "
            "WHERE p.locktype = 'advisory' AND p.classid::bigint = %s AND p.objid::bigint = %s AND p.objsubid = 2 "
            "AND p.granted AND p.pid = l.backend_pid)", (ws, self._space, ws)).fetchone()
        return LockInfo.model_validate(row[0]).holder() if row is not None else None

    def holder(self) -> dict[str, Any] | None:
        with self._io, self._session("cannot read the lock") as conn:
            ws = self._workspace(conn, create=False)
            return None if ws is None else self._holder(conn, ws)

    def unlock(self, lock_id: str) -> str:
        """End the session holding lock ``lock_id`` (its run then stops at its next write)."""
        with self._io, self._session("cannot unlock") as conn:
            ws = self._workspace(conn, create=False)
            row = None if ws is None else conn.execute(
                f"SELECT info, backend_pid FROM {self._s}.locks WHERE workspace_id = %s", (ws,)).fetchone()
            if row is None or row[0].get("id") != lock_id:
                now = f"the lock record names {row[0].get('id')}" if row is not None else "no lock is recorded"
                raise StateError(f"state {self.location}: no lock {lock_id} ({now}); nothing was changed")
            who = ", ".join(f"{k}={v}" for k, v in LockInfo.model_validate(row[0]).holder().items() if k != "id")
            assert ws is not None
            if self._holder(conn, ws) is None:
                conn.execute(f"DELETE FROM {self._s}.locks WHERE workspace_id = %s AND lock_id = %s", (ws, lock_id))
                return (f"lock {lock_id} ({who}) was no longer held: its session had ended, and the lock with it; "
                        "its record was removed")
            conn.execute("SELECT pg_terminate_backend(%s)", (row[1],))
            deadline = time.monotonic() + 10
            while self._holder(conn, ws) is not None:
                if time.monotonic() > deadline:
                    raise StateError(f"state {self.location}: the session holding lock {lock_id} did not end "
                                     "within 10s of being terminated")
                time.sleep(0.05)
            conn.execute(f"DELETE FROM {self._s}.locks WHERE workspace_id = %s AND lock_id = %s", (ws, lock_id))
        return (f"lock {lock_id} ({who}) released: the database session holding it was terminated; that run, if "
                "still going, stops at its next state write")
