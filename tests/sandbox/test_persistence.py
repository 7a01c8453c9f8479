"""The data file: atomic replacement, format checks, nothing left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.sandbox.persistence import DATA_FILE, DataStore, SandboxDataError


def test_nothing_saved_yet_loads_none(tmp_path: Path) -> None:
    assert DataStore(tmp_path / "fresh").load() is None


def test_round_trip_and_no_temporary_files_left(tmp_path: Path) -> None:
    store = DataStore(tmp_path / "data")
    store.save({"engine": {"enrollments": {"10000": {"cn": "a.example.com"}}}, "counters": {"requests": 3}})
    store.save({"engine": {"enrollments": {}}, "counters": {"requests": 4}})
    assert store.load() == {"format": 1, "engine": {"enrollments": {}}, "counters": {"requests": 4}}
    assert sorted(os.listdir(tmp_path / "data")) == [DATA_FILE]


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    store = DataStore(tmp_path)
    store.save({"engine": {"n": 1}})
    with pytest.raises(TypeError):
        store.save({"engine": {"n": object()}})  # not JSON-serialisable: fails before touching the file
    assert store.load() == {"format": 1, "engine": {"n": 1}}
    assert sorted(os.listdir(tmp_path)) == [DATA_FILE]


def test_replace_is_atomic_for_a_concurrent_reader(tmp_path: Path) -> None:
    # The old inode stays readable while the new file takes its name.
    store = DataStore(tmp_path)
    store.save({"engine": {"n": 1}})
    with store.path.open(encoding="utf-8") as old:
        store.save({"engine": {"n": 2}})
        assert json.load(old)["engine"] == {"n": 1}
    assert store.load()["engine"] == {"n": 2}  # type: ignore[index]


@pytest.mark.parametrize("content", ["{not json", '{"format": 99}', "[]"])
def test_corrupt_or_foreign_files_are_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / DATA_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(SandboxDataError, match=DATA_FILE):
        DataStore(tmp_path).load()
