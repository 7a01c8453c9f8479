"""Durable files: atomic replace, fsync, the previous copy kept as a backup, leftovers removed.

A write goes to a temporary file in the same directory (``.<name>.<random>.tmp``, created
``0666 & ~umask`` like any file a person would commit), is fsynced, then ``os.replace``d over the
old file, and the directory is fsynced, so a crash leaves either the old or the new file, never a
torn one. A failed fsync of the file or of the directory is a failed write. Before the rename,
the old file can be kept as a backup (a hard link: no copy).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename (or a new entry) in ``directory`` durable.

    Only "this directory cannot be opened for fsync" is tolerated (some platforms and filesystems
    refuse O_RDONLY on a directory: there is nothing to sync). A failed fsync is a failed write:
    the rename may not survive a power cut, so the caller must not believe it durable.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """``mkdir -p`` that fsyncs the parent of every directory it creates (so the new directory,
    and the files about to be written in it, survive a power cut)."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        fsync_dir(path.parent)


TEMP_SUFFIX = ".tmp"


def temp_name(path: Path, tag: str = "") -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<tag><random>.tmp`` (dot file, our prefix)."""
    return path.with_name(f".{path.name}.{tag}{secrets.token_hex(8)}{TEMP_SUFFIX}")


def _create(path: Path) -> tuple[int, Path]:
    # Not mkstemp: it creates 0600 whatever the umask, and the state is meant to be committed and
    # read by other users (CI, containers). The kernel applies the umask to 0666 here.
    while True:
        tmp = temp_name(path)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, fsync of the directory.

    On any failure before the rename the temporary file is removed; after it (the directory
    fsync failed) the new file is in place but the caller gets the error: it is not durable.
    """
    replace_files(path.parent, {path: data}, None)


def replace_files(directory: Path, files: Mapping[Path, bytes], backup: Callable[[Path], Path] | None) -> None:
    """Replace several files of ``directory`` at once: each is old or new after a crash.

    Every temporary file is written and fsynced first, then each existing file is linked to its
    ``backup(path)`` and the new one renamed over it, then the directory is fsynced once.
    """
    temps: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            fd, tmp = _create(path)
            temps[path] = tmp
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError as exc:
                if exc.filename is None:
                    # A full disk fails the write, whose error names no file: name the one being
                    # written (same errno, so the same OSError subclass).
                    raise OSError(exc.errno, exc.strerror, str(path)) from exc
                raise
            finally:
                os.close(fd)
        for path in list(temps):
            if backup is not None and path.exists():
                keep_backup(path, backup(path))
            os.replace(temps.pop(path), path)
    finally:
        for tmp in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    fsync_dir(directory)


def keep_backup(path: Path, backup: Path) -> None:
    """Make the current ``path`` (complete, fsynced) the ``backup``, before ``path`` is replaced.

    A hard link, so nothing is copied (the rename of the new file then leaves the backup the old
    inode; the directory fsync after that rename covers both). Filesystems without hard links copy.
    """
    with contextlib.suppress(OSError):
        if os.path.samefile(path, backup):
            # A write died after linking (killed, disk full): the backup already is this file, and
            # renaming a second link over it would be a POSIX no-op that leaves the link behind.
            return
    link = temp_name(backup)
    try:
        os.link(path, link)
    except OSError:
        atomic_write(backup, path.read_bytes())
        return
    try:
        os.replace(link, backup)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)  # still there only if the rename failed or was a no-op


def remove_stale_temps(directory: Path, prefix: str) -> list[Path]:
    """Remove ``<prefix>*.tmp`` files in ``directory``: what a killed writer left.

    Call only while no writer of these files can be running (the state lock is held).
    """
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for path in directory.iterdir():
            if path.name.startswith(prefix) and path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


Signature = tuple[int, int, int]
"""Inode, size and modification time of a file: what tells that someone else wrote it."""


def signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns
