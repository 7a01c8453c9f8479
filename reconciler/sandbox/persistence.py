"""The sandbox's one data file: engine snapshot, CA, clock and counters, written atomically.

Writes go to a temporary file in the same directory, are fsynced, then ``os.replace``d over the
old file (and the directory is fsynced), so a crash leaves either the old or the new data, never
a torn file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
DATA_FILE = "sandbox.json"


class SandboxDataError(Exception):
    """The data file exists but cannot be used (corrupt JSON or an unknown format version)."""


class DataStore:
    """Reads and atomically replaces ``<data_dir>/sandbox.json``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DATA_FILE

    def __repr__(self) -> str:
        return f"DataStore({str(self.path)!r})"

    def load(self) -> dict[str, Any] | None:
        """The saved data, or ``None`` when nothing was saved yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SandboxDataError(f"{self.path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            raise SandboxDataError(f"{self.path}: not a sandbox data file of format {FORMAT_VERSION}")
        return data

    def save(self, data: dict[str, Any]) -> None:
        """Write ``data`` (plus the format marker) atomically."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"format": FORMAT_VERSION, **data}, separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(prefix=".sandbox-", suffix=".tmp", dir=self.data_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.data_dir)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
