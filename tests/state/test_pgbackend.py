"""The PostgreSQL backend against a real server (tests/pgserver.py): the store's contract, history,
schema versions, workspaces, locks that die with their session, and errors that never show the DSN."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from reconciler.errors import ConfigError, StateError, StateLocked
from reconciler.state import State, StateEntry, StateStore
from reconciler.state.pgbackend import PostgresBackend
from reconciler.state.pgconnect import Dsn
from reconciler.state.pgschema import LATEST
from tests.conftest import DSN_ENV, PgWorkspace
from tests.pgserver import PASSWORD, PgCluster
from tests.secretscan import scan_for_secrets


def _entry(eid: int | None = 10000, cn: str = "www.example.com") -> StateEntry:
    return StateEntry(enrollment_id=eid, contract_id="ctr_1-AB123", common_name=cn, spec_hash="h1")


def _backend(ws: PgWorkspace, name: str | None = None, schema: str = "reconcile") -> PostgresBackend:
    return PostgresBackend(Dsn(DSN_ENV, ws.dsn), name or ws.name, schema)


def _store(ws: PgWorkspace, name: str | None = None) -> StateStore:
    return StateStore(Path("/nonexistent/state.json"), backend=_backend(ws, name))


def test_round_trip_serial_history_and_versions(pg_workspace: PgWorkspace) -> None:
    store = _store(pg_workspace)
    fresh = store.read()
    assert fresh.serial == 0 and fresh.entries == {}
    one = store.write(fresh.with_entry("www", _entry()))
    assert one.serial == 2 and one.entries["www"].revision == 1
    two = store.update_entry("www", spec_hash="h2")
    three = store.write(two.with_entry("api", _entry(2, "api.example.com")))
    assert store.read() == three
    assert _store(pg_workspace).read() == three  # another process sees exactly what was written
    history = store.backend.history()
    assert [(v.version, v.serial, v.entries) for v in history] == [(3, 4, 2), (2, 3, 1), (1, 2, 1)]
    assert store.backend.version(3) == two and store.backend.version(2) == one
    with pytest.raises(StateError, match="no version with serial 99"):
        store.backend.version(99)
    removed = store.remove_entry("www")
    assert store.read() == removed and set(removed.entries) == {"api"}
    assert store.backend.version(4) == three  # removing an entry keeps what it was


def test_a_change_written_by_someone_else_is_never_written_over(pg_workspace: PgWorkspace) -> None:
    mine, theirs = _store(pg_workspace), _store(pg_workspace)
    state = mine.write(mine.read().with_entry("www", _entry()))
    theirs.update_entry("www", spec_hash="theirs")
    with pytest.raises(StateError, match="changed since it was read"):
        mine.write(state.with_entry("www", _entry(1)))
    # Below the store's serial check, the backend refuses too: its last-seen version moved.
    stale = _backend(pg_workspace)
    stale.read()
    theirs.update_entry("www", spec_hash="again")
    with pytest.raises(StateError, match="was changed by someone else"):
        stale.write(state)
    assert _store(pg_workspace).read().entries["www"].spec_hash == "again"


def test_workspaces_are_isolated(pg_workspace: PgWorkspace) -> None:
    a, b = _store(pg_workspace, pg_workspace.name + "-a"), _store(pg_workspace, pg_workspace.name + "-b")
    sa = a.write(a.read().with_entry("www", _entry(1)))
    sb = b.write(b.read().with_entry("www", _entry(2)))
    assert sa.lineage != sb.lineage
    assert a.read().entries["www"].enrollment_id == 1 and b.read().entries["www"].enrollment_id == 2
    with a.lock("apply"), b.lock("apply"):  # one lock per workspace
        with pytest.raises(StateLocked), _store(pg_workspace, pg_workspace.name + "-a").lock("apply"):
            pass
    assert len(a.backend.history()) == 1 and len(b.backend.history()) == 1


def test_schema_created_on_first_write_not_on_read_and_a_newer_schema_is_refused(pg_cluster: PgCluster) -> None:
    database = f"schema_{os.getpid()}_{time.monotonic_ns() % 100000}"
    pg_cluster.admin(f"CREATE DATABASE {database} OWNER reconcile")
    dsn = Dsn(DSN_ENV, pg_cluster.dsn(database))
    backend = PostgresBackend(dsn, "w")
    assert backend.read().serial == 0
    assert pg_cluster.admin("SELECT 1 FROM pg_namespace WHERE nspname = 'reconcile'", database) == []
    store = StateStore(Path("/nonexistent"), backend=backend)
    store.write(store.read().with_entry("www", _entry()))
    assert pg_cluster.admin("SELECT version FROM reconcile.migrations", database) == [(LATEST,)]
    pg_cluster.admin(f"INSERT INTO reconcile.migrations (version, tool) VALUES ({LATEST + 1}, 'future')", database)
    for fresh in (PostgresBackend(dsn, "w"), PostgresBackend(dsn, "other")):
        with pytest.raises(StateError, match=f"schema 'reconcile' is at version {LATEST + 1}; this reconciler .* "
                                             f"knows up to version {LATEST}: upgrade reconciler"):
            StateStore(Path("/x"), backend=fresh).read()
        with pytest.raises(StateError, match="upgrade reconciler"), fresh.lock("apply", 0):
            pass


def test_a_damaged_row_is_refused_naming_the_entry(pg_workspace: PgWorkspace, pg_cluster: PgCluster) -> None:
    store = _store(pg_workspace)
    store.write(store.read().with_entry("www", _entry()))
    pg_cluster.admin("UPDATE reconcile.entry_versions SET body = body - 'contract_id' WHERE workspace_id = "
                     f"(SELECT id FROM reconcile.workspaces WHERE name = '{pg_workspace.name}')", "reconcile")
    with pytest.raises(StateError, match="entry 'www': contract_id: Field required"):
        _store(pg_workspace).read()


def test_deferred_records_are_written_behind_and_flushed_on_release(pg_workspace: PgWorkspace) -> None:
    store = _store(pg_workspace)
    store.write(store.read().with_entry("www", _entry()))

    async def steps() -> None:
        for i in range(20):
            store.update(lambda s, i=i: s.with_entry("www", _entry(100 + i)), defer=True)
            await asyncio.sleep(0)

    with store.lock("apply"):
        asyncio.run(steps())
    assert _store(pg_workspace).read().entries["www"].enrollment_id == 119
    assert len(store.backend.history()) < 21  # coalesced


# -- locks ---------------------------------------------------------------------------------------

def test_lock_fails_fast_naming_the_holder_and_waits_with_a_timeout(pg_workspace: PgWorkspace) -> None:
    store, other = _store(pg_workspace), _store(pg_workspace)
    with store.lock("apply") as info:
        assert other.holder() == info.holder()
        started = time.monotonic()
        with pytest.raises(StateLocked) as err, other.lock("apply"):
            pass
        assert time.monotonic() - started < 2
        with pytest.raises(StateLocked), other.lock("plan", timeout=0.3):
            pass
        assert time.monotonic() - started >= 0.25
    message = str(err.value)
    assert f"postgres workspace '{pg_workspace.name}' is locked (operation=apply, pid={os.getpid()}" in message
    assert f"id={info.id}" in message and "--lock-timeout" in message
    assert other.holder() is None  # released

    release = threading.Event()

    def hold() -> None:
        with store.lock("apply"):
            held.set()
            release.wait(10)

    held = threading.Event()
    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with other.lock("apply", timeout=10):
        waited = time.monotonic() - started
    thread.join()
    assert 0.2 < waited < 10


HOLD = """
import os, sys, time, pathlib
from reconciler.state import StateStore, StateEntry
from reconciler.state.pgbackend import PostgresBackend
from reconciler.state.pgconnect import Dsn
store = StateStore('/nonexistent', backend=PostgresBackend(Dsn.from_env(sys.argv[1]), sys.argv[2]))
with store.lock('apply'):
    pathlib.Path(sys.argv[3]).touch()
    while not pathlib.Path(sys.argv[3] + '.write').exists():
        time.sleep(0.02)
    store.write(store.read().with_entry('x', StateEntry(contract_id='c', common_name='x.example.com')))
"""


def _holder_process(ws: PgWorkspace, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, DSN_ENV, ws.name, str(ready)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the child never took the lock"
        time.sleep(0.02)
    return proc, ready


def test_a_killed_holder_frees_the_lock_at_once(pg_workspace: PgWorkspace, tmp_path: Path) -> None:
    store = _store(pg_workspace)
    proc, _ = _holder_process(pg_workspace, tmp_path)
    try:
        with pytest.raises(StateLocked) as err, store.lock("apply"):
            pass
        assert err.value.holder["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()
    started = time.monotonic()
    with store.lock("apply", timeout=10):
        pass
    assert time.monotonic() - started < 2  # the server ended the dead session's lock with it
    assert store.holder() is None  # the dead holder's record is not reported as a holder


def test_unlock_ends_a_hung_holders_session_and_its_next_write_fails(pg_workspace: PgWorkspace,
                                                                     tmp_path: Path) -> None:
    store = _store(pg_workspace)
    proc, ready = _holder_process(pg_workspace, tmp_path)
    try:
        holder = store.holder()
        assert holder is not None and holder["pid"] == proc.pid
        with pytest.raises(StateError, match="no lock nope"):
            store.unlock("nope")
        said = store.unlock(holder["id"])
        assert "terminated" in said and f"pid={proc.pid}" in said
        with store.lock("apply"):
            pass
        (tmp_path / (ready.name + ".write")).touch()
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "the session holding the state lock is gone, and the lock with it" in err, err
    assert store.read().serial == 0  # the unlocked run wrote nothing more
    assert "no lock is recorded" in str(pytest.raises(StateError, store.unlock, holder["id"]).value)


# -- connections and the DSN ---------------------------------------------------------------------

def test_masking_covers_every_spelling_of_the_password() -> None:
    password = "p@ss w/rd+'x"
    url = f"postgresql://u:{quote(password, safe='')}@h:5432/db?sslmode=require"
    kv = "host=h user=u password='p@ss w/rd+\\'x' dbname=db"
    for dsn in (Dsn("E", url), Dsn("E", kv)):
        text = f"oops {dsn.value} / {password} / {quote(password, safe='')}"
        masked = dsn.mask(text)
        assert password not in masked and quote(password, safe="") not in masked and dsn.value not in masked
        assert repr(dsn) == "Dsn(env='E')"


def test_connection_errors_name_the_variable_never_the_dsn(pg_cluster: PgCluster, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    for logger in ("", "psycopg", "reconciler", "reconciler.state"):
        caplog.set_level(logging.DEBUG, logger=logger)
    cases = {
        "wrong password": pg_cluster.dsn(password=PASSWORD[::-1]),
        "unparseable": f"host=127.0.0.1 password={PASSWORD} port",
        "refused": f"postgresql://reconcile:{quote(PASSWORD, safe='')}@127.0.0.1:1/reconcile",
    }
    expected = {"wrong password": "password authentication failed", "unparseable": "cannot be parsed",
                "refused": "cannot connect to the state database ($RECONCILE_STATE_DSN)"}
    for label, dsn in cases.items():
        monkeypatch.setenv(DSN_ENV, dsn)
        with pytest.raises(StateError) as err:
            StateStore(Path("/x"), backend=PostgresBackend(Dsn.from_env(DSN_ENV), "w")).read()
        text = str(err.value)
        assert expected[label] in text, text
        for secret in (PASSWORD, PASSWORD[::-1], quote(PASSWORD, safe=""), quote(PASSWORD[::-1], safe=""), dsn):
            assert secret not in text, label
        assert err.value.__cause__ is None and err.value.__suppress_context__
    assert "connection attempt" in caplog.text  # psycopg's DEBUG records were there to leak
    findings = scan_for_secrets({"password": PASSWORD, "wrong": PASSWORD[::-1]}, texts={"log": caplog.text})
    assert not findings, "\n".join(map(str, findings))
    monkeypatch.delenv(DSN_ENV)
    with pytest.raises(ConfigError, match="environment variable RECONCILE_STATE_DSN .* is not set"):
        Dsn.from_env(DSN_ENV)


def test_a_missing_driver_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "reconcile.yaml").write_text("state: {backend: postgres, workspace: w}\n")
    script = ("import sys; sys.modules['psycopg'] = None\n"
              "from reconciler.cli.main import main\nmain()\n")
    done = subprocess.run([sys.executable, "-c", script, "state", "pull"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, DSN_ENV: "postgresql://u:p@127.0.0.1:1/db"}, timeout=60)
    assert done.returncode == 1
    assert "needs the PostgreSQL driver psycopg 3, which is not installed: pip install " \
           "'cps-reconciler[postgres]'" in done.stderr, done.stderr


def test_the_dsn_variable_is_kept_from_hooks(pg_workspace: PgWorkspace) -> None:
    from reconciler.config import PostgresStateConfig
    from reconciler.secretenv import child_environment
    from reconciler.state.backends import postgres_backend

    postgres_backend(PostgresStateConfig(backend="postgres", workspace=pg_workspace.name))
    assert DSN_ENV not in child_environment() and os.environ[DSN_ENV] == pg_workspace.dsn


def test_state_in_memory_equals_state_read_back(pg_workspace: PgWorkspace) -> None:
    # Datetimes, tuples and nested models survive jsonb exactly (the round trip is byte-identical).
    from datetime import UTC, datetime

    from reconciler.state import ChangeInFlight, Intent, PublishedChallenge

    entry = _entry().model_copy(update={
        "intent": Intent(op="creating", common_name="www.example.com", contract_id="ctr_1-AB123",
                         at=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), detail={"n": [1, "x"]}),
        "change": ChangeInFlight(change_id=7, status="wait", waiting_for=("a", "b")),
        "challenges": (PublishedChallenge(domain="d", type="dns-01", record_name="r", value="v", publisher="p"),),
        "certificate_fingerprints": {"rsa": "ab" * 32}})
    store = _store(pg_workspace)
    written = store.write(State().with_entry("www", entry))
    assert _store(pg_workspace).read().to_json() == written.to_json()
