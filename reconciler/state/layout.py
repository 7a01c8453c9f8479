"""Where the file backend keeps a state, and the text of each of its files.

For ``state_path: state/reconcile-state.json`` (format 2)::

    state/reconcile-state.json               header: format_version, lineage, serial_base
    state/reconcile-state/NAME.json          one file per entry (spec name NAME), with its revision
    state/reconcile-state/NAME.json.backup   the entry file's previous copy        (working file)
    state/reconcile-state.json.backup        the header's previous copy            (working file)
    state/reconcile-state.json.v1            a format-1 state as it was before its migration
    state/reconcile-state.json.lock          the OS lock; ``.lock.info`` names its holder (working files)

Nothing every run touches is shared between entries: the header changes only when a state is
born or migrated, and an apply writes only the files of the enrollments it worked on. Two git
branches that apply to different enrollments therefore change different files and merge without
a conflict; the same entry changed on both sides is what ``reconcile state merge`` resolves.

How each situation on disk reads (the file backend enforces it; reads never repair anything):

==========================================  ==================================================
on disk                                      read as
==========================================  ==================================================
no header, no entry file                     a fresh state (new lineage, serial 0)
no header, but its backup                    refused: restore it or remove the backup
no header, but entry files                   refused: the header is missing (restore it)
header in format 1 (the whole state)         that state; the next write migrates it
header in format 2                           header plus every ``NAME.json``
git conflict markers in any file             refused, naming the file: run ``reconcile state merge``
a damaged file (not JSON, wrong fields)      refused, naming the file and its backup
==========================================  ==================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.errors import StateError
from reconciler.state.model import FORMAT_VERSION, State, StateEntry

ENTRY_SUFFIX = ".json"
BACKUP_SUFFIX = ".backup"
_V1_KEYS = ("format_version", "lineage", "serial", "entries")
_HEADER_KEYS = ("format_version", "lineage", "serial_base")
_MARKERS = (b"<<<<<<< ", b"=======\n", b">>>>>>> ")


@dataclass(frozen=True)
class Header:
    """What the header file says."""

    format_version: int
    lineage: str
    serial_base: int


class Layout:
    """The paths of one file-backed state, and the codecs of its files."""

    def __init__(self, path: Path) -> None:
        self.header = path
        self.directory = path.parent
        self.entries = path.with_name(path.stem if path.suffix == ".json" else path.name + ".d")
        self.header_backup = path.with_name(path.name + BACKUP_SUFFIX)
        self.v1_backup = path.with_name(path.name + ".v1")
        self.lock = path.with_name(path.name + ".lock")
        self.info = path.with_name(path.name + ".lock.info")

    # -- names -------------------------------------------------------------------------------

    def entry(self, name: str) -> Path:
        if not name or "/" in name or "\\" in name or "\0" in name or name.startswith(".") or name != name.strip():
            raise StateError(f"state entry name {name!r} cannot be a file name in {self.entries}")
        return self.entries / f"{name}{ENTRY_SUFFIX}"

    @staticmethod
    def backup(path: Path) -> Path:
        return path.with_name(path.name + BACKUP_SUFFIX)

    def entry_files(self) -> dict[str, Path]:
        """``NAME -> path`` of every entry file on disk (dot files and backups are not entries)."""
        try:
            children = list(self.entries.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return {}
        return {p.name[: -len(ENTRY_SUFFIX)]: p for p in sorted(children)
                if p.name.endswith(ENTRY_SUFFIX) and not p.name.startswith(".")}

    def gitignore(self, root: Path) -> list[str]:
        """The working files of this state, as ``.gitignore`` lines relative to ``root``."""
        try:
            rel = self.directory.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return []
        prefix = "" if rel == "." else f"/{rel}"
        return [f"{prefix}/{self.lock.name}", f"{prefix}/{self.info.name}", f"{prefix}/**/.*.tmp",
                f"{prefix}/**/*{BACKUP_SUFFIX}"]

    # -- text --------------------------------------------------------------------------------

    @staticmethod
    def render_header(state: State) -> bytes:
        return _dump({"format_version": FORMAT_VERSION, "lineage": state.lineage, "serial_base": state.serial_base})

    @staticmethod
    def render_entry(entry: StateEntry) -> bytes:
        return _dump(entry.model_dump(mode="json"))

    def parse_header(self, raw: bytes) -> Header | State:
        """The header, or for a format-1 file the whole state it holds."""
        data = self._object(self.header, raw, self.header_backup)
        version = data.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise StateError(f"state file {self.header} has format version {version}; this reconciler "
                             f"reads up to {FORMAT_VERSION}: upgrade reconciler")
        if version == 1:
            return self._parse_v1(data)
        # Every header this tool writes has all its keys; defaulting a missing lineage would mint
        # a new history, and the plan would then offer to adopt the whole account.
        missing = [key for key in _HEADER_KEYS if key not in data]
        extra = sorted(set(data) - set(_HEADER_KEYS))
        if missing or extra:
            raise corrupt(self.header, self.header_backup,
                          f"missing {', '.join(missing)}" if missing else f"unknown field {extra[0]}")
        lineage, base = data["lineage"], data["serial_base"]
        if not isinstance(lineage, str) or not lineage:
            raise corrupt(self.header, self.header_backup, "lineage: not a string")
        if not isinstance(base, int) or isinstance(base, bool) or base < 1:
            raise corrupt(self.header, self.header_backup, "serial_base: not a positive integer")
        return Header(format_version=version if isinstance(version, int) else 0, lineage=lineage, serial_base=base)

    def _parse_v1(self, data: dict[str, Any]) -> State:
        missing = [key for key in _V1_KEYS if key not in data]
        if missing:
            raise corrupt(self.header, self.header_backup, f"missing {', '.join(missing)}")
        try:
            old = State.model_validate({**data, "format_version": FORMAT_VERSION})
        except ValidationError as exc:
            raise corrupt(self.header, self.header_backup, _first(exc)) from None
        base = max(1, old.serial)  # the migrated state keeps its serial: saved plans stay valid
        return old.model_copy(update={"serial_base": base, "serial": base})

    def parse_entry(self, path: Path, raw: bytes) -> StateEntry:
        data = self._object(path, raw, self.backup(path))
        try:
            return StateEntry.model_validate(data)
        except ValidationError as exc:
            raise corrupt(path, self.backup(path), _first(exc)) from None

    @staticmethod
    def _object(path: Path, raw: bytes, backup: Path) -> dict[str, Any]:
        if any(raw.startswith(m) or b"\n" + m in raw for m in _MARKERS):
            raise conflicted(path)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise corrupt(path, backup, f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise corrupt(path, backup, "not a JSON object")
        return data


def _dump(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _first(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def corrupt(path: Path, backup: Path, why: str) -> StateError:
    copy = f"the previous copy is {backup}" if backup.exists() else f"no backup exists ({backup})"
    return StateError(f"state file {path} is unreadable: {why}; it was left untouched and {copy}: "
                      "inspect both and restore by hand")


def conflicted(path: Path) -> StateError:
    return StateError(f"state file {path} holds git conflict markers (an unfinished merge): run `reconcile "
                      "state merge` to resolve it from both sides; do not restore a backup, it holds one side only")
