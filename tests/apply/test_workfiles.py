"""Working files beside the state: removed with their entry, and swept of a killed run's leftovers."""

from __future__ import annotations

from pathlib import Path

from reconciler.apply import workfiles


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


def test_sweep_removes_temp_leftovers_and_files_of_forgotten_names(tmp_path: Path) -> None:
    kept = [_touch(tmp_path / "challenges" / "www.json"), _touch(tmp_path / "challenges" / "www.zone"),
            _touch(tmp_path / "csr" / "shop.ecdsa.csr.pem"), _touch(tmp_path / "csr" / "README.txt")]
    gone = [_touch(tmp_path / "challenges" / ".k5.json.a1b2c3d4"),  # mkstemp leftover of older versions
            _touch(tmp_path / "challenges" / ".www.json.9f8e7d6c5b4a3921.tmp"),
            _touch(tmp_path / "csr" / ".shop.rsa.csr.pem.0123456789abcdef.tmp"),
            _touch(tmp_path / "challenges" / "old.json"), _touch(tmp_path / "challenges" / "old.zone"),
            _touch(tmp_path / "csr" / "old.rsa.csr.pem")]
    removed = workfiles.sweep(tmp_path, {"www", "shop"})
    assert sorted(removed) == sorted(gone)
    assert all(p.exists() for p in kept)


def test_forget_removes_the_files_of_one_name(tmp_path: Path) -> None:
    mine = [_touch(p) for p in workfiles.files_of(tmp_path, "www")]
    other = _touch(tmp_path / "challenges" / "www2.json")
    assert sorted(workfiles.forget(tmp_path, "www")) == sorted(mine)
    assert other.exists() and not any(p.exists() for p in mine)


def test_sweep_without_directories_is_a_no_op(tmp_path: Path) -> None:
    assert workfiles.sweep(tmp_path / "nothing", set()) == []
