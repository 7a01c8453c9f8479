"""StateStore: atomic writes with a backup, refusal of corrupt files, lineage/serial checks, the lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.errors import StateError, StateLocked
from reconciler.state import ChangeInFlight, Intent, State, StateEntry, StateStore


def _entry(eid: int | None = 10000, cn: str = "www.example.com") -> StateEntry:
    return StateEntry(enrollment_id=eid, contract_id="ctr_1-AB123", common_name=cn, spec_hash="h1")


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state" / "reconcile-state.json")


def test_missing_file_reads_as_fresh_state_with_new_lineage(store: StateStore) -> None:
    first, second = store.read(), store.read()
    assert first.serial == 0 and first.entries == {}
    assert first.lineage != second.lineage  # nothing on disk yet: every read is a new birth


def test_write_bumps_serial_and_round_trips(store: StateStore) -> None:
    state = store.read().with_entry("www", _entry())
    written = store.write(state)
    assert written.serial == 2  # serial_base 1 + the new entry's revision 1
    assert written.entries["www"].revision == 1 and written.entries["www"].updated_at is not None
    again = store.read()
    assert again == written
    assert again.entries["www"].enrollment_id == 10000
    assert store.path.read_text().endswith("\n")


def test_write_keeps_previous_copy_as_backup(store: StateStore) -> None:
    one = store.write(store.read().with_entry("a", _entry(1)))
    first = (store.entries_dir / "a.json").read_bytes()
    two = store.write(one.with_entry("a", _entry(2)))
    assert (store.entries_dir / "a.json.backup").read_bytes() == first
    assert json.loads(first)["revision"] == 1 and two.entries["a"].revision == 2
    assert two.serial == one.serial + 1


def test_one_file_per_entry_and_a_header_that_does_not_churn(store: StateStore) -> None:
    s = store.write(store.read().with_entry("a", _entry(1)))
    header = store.path.read_bytes()
    s = store.write(s.with_entry("b", _entry(2)))
    s = store.write(s.with_entry("a", _entry(3)))
    store.remove_entry("b")
    assert store.path.read_bytes() == header
    assert sorted(json.loads(header)) == ["format_version", "lineage", "serial_base"]
    assert sorted(p.name for p in store.entries_dir.iterdir()) == ["a.json", "a.json.backup"]


def test_write_leaves_no_temp_files(store: StateStore) -> None:
    s = store.write(store.read())
    store.write(s)
    store.save_entry("a", _entry())
    store.update_entry("a", spec_hash="h2")
    names = sorted(str(p.relative_to(store.path.parent)) for p in store.path.parent.rglob("*"))
    assert names == ["reconcile-state", "reconcile-state.json", "reconcile-state/a.json",
                     "reconcile-state/a.json.backup"]


def test_corrupt_file_is_refused_naming_the_backup_and_left_untouched(store: StateStore) -> None:
    s = store.write(store.read().with_entry("a", _entry()))
    store.write(s)
    truncated = store.path.read_bytes()[:40]
    store.path.write_bytes(truncated)
    with pytest.raises(StateError) as info:
        store.read()
    assert str(store.backup_path) in str(info.value)
    assert "not valid JSON" in str(info.value)
    with pytest.raises(StateError):
        store.write(State())  # never overwritten silently
    assert store.path.read_bytes() == truncated


def test_schema_violation_is_reported_as_corrupt(store: StateStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps({"format_version": 1, "lineage": "x", "serial": "many", "entries": {}}))
    with pytest.raises(StateError, match="serial"):
        store.read()


def test_newer_format_version_is_refused(store: StateStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps({"format_version": 99, "lineage": "x", "serial": 1, "entries": {}}))
    with pytest.raises(StateError, match="upgrade"):
        store.read()


def test_missing_header_with_entries_or_backup_is_refused(store: StateStore) -> None:
    store.save_entry("a", _entry())
    header = store.path.read_bytes()
    store.path.unlink()
    with pytest.raises(StateError, match="missing but 1 entry files exist"):
        store.read()
    store.backup_path.write_bytes(header)
    for path in store.entries_dir.iterdir():
        path.unlink()
    with pytest.raises(StateError, match="backup"):
        store.read()


def test_lineage_mismatch_is_refused(store: StateStore) -> None:
    store.write(store.read())
    with pytest.raises(StateError, match="lineage"):
        store.write(State(serial=1))


def test_stale_serial_is_refused(store: StateStore) -> None:
    s1 = store.write(store.read())
    store.write(s1.with_entry("a", _entry()))
    with pytest.raises(StateError, match="changed since it was read"):
        store.write(s1.with_entry("b", _entry()))


def test_update_entry_and_remove_entry(store: StateStore) -> None:
    store.save_entry("www", _entry(None))
    at = datetime(2025, 1, 1, tzinfo=UTC)
    store.update_entry("www", intent=Intent(op="creating", common_name="www.example.com",
                                            contract_id="ctr_1-AB123", at=at))
    assert store.read().entries["www"].intent is not None
    store.update_entry("www", enrollment_id=10001, intent=None,
                       change=ChangeInFlight(change_id=5, status="coodinate-domain-validation",
                                             waiting_for=("lets-encrypt-challenges",)))
    entry = store.read().entries["www"]
    assert entry.enrollment_id == 10001 and entry.intent is None and entry.change is not None
    assert entry.change.waiting_for == ("lets-encrypt-challenges",)
    store.remove_entry("www")
    assert store.read().entries == {}
    with pytest.raises(StateError, match="no state entry"):
        store.update_entry("nope", spec_hash="x")


def test_update_without_change_does_not_write(store: StateStore) -> None:
    s = store.write(store.read())
    assert store.update(lambda st: st) == s
    assert store.read().serial == 1


def test_concurrent_entry_saves_all_land(store: StateStore) -> None:
    store.write(store.read())

    def worker(i: int) -> None:
        for j in range(5):
            store.save_entry(f"e{i}-{j}", _entry(i * 100 + j))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = store.read()
    assert len(final.entries) == 20
    assert final.serial == 21


def test_no_secret_fields_exist_in_the_state_schema() -> None:
    schema = State.model_json_schema()
    names = set(schema["properties"])
    for definition in schema["$defs"].values():
        names.update(definition.get("properties", {}))
    assert "entries" in names and "certificate_fingerprints" in names
    for word in ("secret", "token", "password", "private", "key"):
        assert not [n for n in names if word in n.lower()], word


def test_lock_fails_fast_naming_the_holder(store: StateStore) -> None:
    with store.lock("apply") as info:
        assert store.holder() == info.holder()
        started = time.monotonic()
        with pytest.raises(StateLocked) as err, store.lock("apply"):
            pass
        assert time.monotonic() - started < 1.0
    message = str(err.value)
    assert f"pid={os.getpid()}" in message and "operation=apply" in message and "--lock-timeout" in message
    assert not store.info_path.exists()  # released: holder info removed
    with store.lock("apply"):
        pass  # and the lock is free again


def test_lock_held_by_another_process_is_reported(store: StateStore, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = (
        "import sys, time, pathlib\n"
        "from reconciler.state import StateStore\n"
        f"s = StateStore({str(store.path)!r})\n"
        "with s.lock('apply'):\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline, "child never took the lock"
            time.sleep(0.05)
        with pytest.raises(StateLocked) as err, store.lock("apply"):
            pass
        assert err.value.holder["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()
    with store.lock("apply", timeout=5):
        pass  # the OS released the dead holder's lock


def test_lock_timeout_waits_for_release(store: StateStore) -> None:
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with store.lock("apply"):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with store.lock("apply", timeout=5):
        waited = time.monotonic() - started
    t.join()
    assert 0.2 < waited < 5


def test_lock_timeout_expires(store: StateStore) -> None:
    with store.lock("apply"):
        started = time.monotonic()
        with pytest.raises(StateLocked), store.lock("plan", timeout=0.3):
            pass
        assert time.monotonic() - started >= 0.25


def test_non_object_json_is_corrupt(store: StateStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text("[]")
    with pytest.raises(StateError, match="not a JSON object"):
        store.read()


def test_unreadable_holder_info_reports_unknown_holder(store: StateStore) -> None:
    with store.lock("apply"):
        store.info_path.write_text("{garbage")
        with pytest.raises(StateLocked, match="unknown holder"), store.lock("apply"):
            pass
