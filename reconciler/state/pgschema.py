"""The PostgreSQL state schema: its tables, its versions, and how a database is brought up to date.

All tables live in one database schema (``state.schema_name``, default ``reconcile``), created
on first use (a lock or a write; a read of a database never used leaves it untouched and reads
a fresh state)::

    migrations      version, applied_at, tool           one row per schema migration applied
    workspaces      id, name, lineage, serial_base,     one row per workspace; ``version`` counts
                    serial, version                     the writes (0: nothing stored yet)
    entry_versions  id, workspace_id, name, body        every content an entry ever had (jsonb)
    entries         workspace_id, name,                 the current state: name -> entry_versions
                    entry_version_id
    versions        workspace_id, version, serial,      every written state: which entry version
                    lineage, serial_base, entries,      each name had ({name: entry_versions.id}),
                    written_at, written_by              when, and the lock holder that wrote it
    locks           workspace_id, lock_id, info,        who holds the workspace's lock (the lock
                    backend_pid                         itself is a session advisory lock)

A write stores only the entries whose content changed plus one small ``versions`` row, so
keeping every version costs what changed, not a copy of the whole state per step.

Versions: ``LATEST`` is what this code knows. Migrations run in one transaction under a
transaction advisory lock (two first runs do not race); a database whose schema is newer than
``LATEST`` is refused, naming both versions, before anything is read or written.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING, Any

from reconciler import __version__
from reconciler.errors import StateError

if TYPE_CHECKING:
    import psycopg

_V1 = """
CREATE TABLE {s}.workspaces (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    lineage text,
    serial_base integer,
    serial integer NOT NULL DEFAULT 0,
    version integer NOT NULL DEFAULT 0
);
CREATE TABLE {s}.entry_versions (
    id bigserial PRIMARY KEY,
    workspace_id integer NOT NULL REFERENCES {s}.workspaces (id) ON DELETE CASCADE,
    name text NOT NULL,
    body jsonb NOT NULL
);
CREATE TABLE {s}.entries (
    workspace_id integer NOT NULL REFERENCES {s}.workspaces (id) ON DELETE CASCADE,
    name text NOT NULL,
    entry_version_id bigint NOT NULL REFERENCES {s}.entry_versions (id),
    PRIMARY KEY (workspace_id, name)
);
CREATE TABLE {s}.versions (
    workspace_id integer NOT NULL REFERENCES {s}.workspaces (id) ON DELETE CASCADE,
    version integer NOT NULL,
    serial integer NOT NULL,
    lineage text NOT NULL,
    serial_base integer NOT NULL,
    entries jsonb NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    written_by jsonb,
    PRIMARY KEY (workspace_id, version)
);
CREATE INDEX versions_by_serial ON {s}.versions (workspace_id, serial);
CREATE TABLE {s}.locks (
    workspace_id integer PRIMARY KEY REFERENCES {s}.workspaces (id) ON DELETE CASCADE,
    lock_id text NOT NULL,
    info jsonb NOT NULL,
    backend_pid integer NOT NULL
);
"""

MIGRATIONS: dict[int, str] = {1: _V1}
LATEST = max(MIGRATIONS)


_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def ident(schema: str) -> str:
    """``schema`` as a quoted SQL identifier (the name is checked: lower-case letters, digits, _)."""
    if not _SCHEMA.match(schema):
        raise StateError(f"state schema name {schema!r}: use lower-case letters, digits and _ (at most 63)")
    return f'"{schema}"'


def lock_space(schema: str) -> int:
    """The first key of every advisory lock taken on ``schema`` (positive int4, one per schema)."""
    return zlib.crc32(f"reconcile:{schema}".encode()) & 0x7FFFFFFF


def installed_version(conn: psycopg.Connection[Any], schema: str) -> int | None:
    """The schema version in the database, or None when reconcile never used it."""
    s = ident(schema)
    row = conn.execute("SELECT to_regclass(%s)", (f"{s}.migrations",)).fetchone()
    if row is None or row[0] is None:
        return None
    found = conn.execute(f"SELECT coalesce(max(version), 0) FROM {s}.migrations").fetchone()
    version = int(found[0]) if found else 0
    refuse_newer(version, schema)
    return version


def refuse_newer(version: int, schema: str) -> None:
    if version > LATEST:
        raise StateError(f"the state database's schema {schema!r} is at version {version}; this reconciler "
                         f"({__version__}) knows up to version {LATEST}: upgrade reconciler (older versions "
                         "never write to a newer schema)")


def ensure_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create or migrate the schema to ``LATEST`` (no-op when it is there)."""
    if installed_version(conn, schema) == LATEST:
        return
    s = ident(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (lock_space(schema),))
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if exists is None:
            conn.execute(f"CREATE SCHEMA {s}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {s}.migrations (version integer PRIMARY KEY, "
                     "applied_at timestamptz NOT NULL DEFAULT now(), tool text NOT NULL)")
        current = installed_version(conn, schema) or 0
        for version in range(current + 1, LATEST + 1):
            conn.execute(MIGRATIONS[version].format(s=s))
            conn.execute(f"INSERT INTO {s}.migrations (version, tool) VALUES (%s, %s)",
                         (version, f"reconciler {__version__}"))
