"""The file-backed state in git: finishing a conflicted merge, the merge driver, ``.gitignore``.

``reconcile state merge`` reads the three versions git keeps in its index for each conflicted
path of the state (stage 1: the common base, 2: ours, 3: theirs), builds the whole state each
side had (paths git merged cleanly are the same on every side), merges them (``merge.py``),
writes the result in the current layout and stages it. A state still in the one-file format 1
on either side is read as such, so a conflicted format-1 file is merged (and migrated) too.

``reconcile state merge-file BASE OURS THEIRS`` is the same for one file, in the form git calls a
merge driver; installed with ``reconcile state merge --install``, git then never stops on the
state at all unless the two sides contradict each other.

Nothing is written when any contradiction remains: each is printed, and the files stay as git
left them.

``write_gitignore`` puts the state's working files (lock, temporary files, backups) out of git in a
new repository (``reconcile import`` calls it).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import StateError
from reconciler.state.files import atomic_write, fsync_dir, make_dirs
from reconciler.state.layout import BACKUP_SUFFIX, ENTRY_SUFFIX, Header, Layout
from reconciler.state.merge import merge_entries, merge_entry, merge_headers
from reconciler.state.model import State, StateEntry

DRIVER = "reconcile-state"
"""The merge driver's name in ``.gitattributes`` and ``git config merge.<name>.driver``."""


@dataclass(frozen=True)
class Resolved:
    """What ``merge_conflicted`` did: the entries it resolved and the ones it removed."""

    merged: list[str]
    removed: list[str]


def _git(root: Path, *args: str, data: bool = False) -> bytes:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)
    if done.returncode != 0:
        raise StateError(f"git {' '.join(args[:2])} failed in {root}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def repo_root(directory: Path) -> Path:
    """The git work tree holding ``directory`` (which need not exist yet)."""
    while not directory.is_dir() and directory != directory.parent:
        directory = directory.parent
    return Path(_git(directory, "rev-parse", "--show-toplevel").decode().strip())


def merge_conflicted(layout: Layout) -> Resolved | None:
    """Resolve the state's conflicted paths in the index; None when nothing is conflicted.

    Raises ``StateError`` listing every contradiction (and writes nothing) when the sides disagree.
    """
    root = repo_root(layout.directory)
    stages = _unmerged(root, layout)
    for path in [p for p in stages if p.endswith(BACKUP_SUFFIX)]:
        _keep_ours(root, path, stages.pop(path))  # a committed backup (no .gitignore): any copy will do
    if not stages:
        return None
    sides = [_side(root, layout, stages, k) for k in (1, 2, 3)]
    base, ours, theirs = sides
    if ours is None or theirs is None:
        raise StateError(f"state {layout.header}: the header was removed on one side of the merge; restore it "
                         f"(git checkout --ours/--theirs -- {layout.header}) and merge again")
    header, problems = merge_headers(base, ours, theirs)
    result = merge_entries(base.entries if base is not None else {}, ours.entries, theirs.entries)
    problems += result.contradictions
    if problems or header is None:
        raise StateError("state merge refused; nothing was written:\n  " + "\n  ".join(problems))
    entries = {n: e for n, e in result.entries.items() if e is not None}
    merged = header.model_copy(update={"entries": entries})
    _write(layout, merged)
    _git(root, "add", "-A", "--", str(layout.header), str(layout.entries))
    changed = [n for n in entries if n in ours.entries and ours.entries[n] != entries[n]
               or n not in ours.entries]
    return Resolved(merged=changed, removed=sorted(set(ours.entries) - set(entries)))


def _keep_ours(root: Path, path: str, by_stage: dict[int, str]) -> None:
    blob = by_stage.get(2, by_stage.get(3))
    target = root / path
    if blob is None:
        _git(root, "rm", "-q", "--cached", "--", path)
        target.unlink(missing_ok=True)
        return
    atomic_write(target, _git(root, "cat-file", "blob", blob))
    _git(root, "add", "--", path)


def _unmerged(root: Path, layout: Layout) -> dict[str, dict[int, str]]:
    """``repo-relative path -> {stage: blob}`` of the state's conflicted paths."""
    out = _git(root, "ls-files", "-u", "-z", "--full-name", "--", str(layout.header), str(layout.entries))
    stages: dict[str, dict[int, str]] = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, path = record.decode().split("\t", 1)
        _mode, blob, stage = meta.split()
        stages.setdefault(path, {})[int(stage)] = blob
    return stages


def _side(root: Path, layout: Layout, stages: dict[str, dict[int, str]], k: int) -> State | None:
    """The whole state side ``k`` had: its version of each conflicted path, the index's of the rest."""
    header_rel = _rel(root, layout.header)
    if header_rel in stages:
        blob = stages[header_rel].get(k)
        if blob is None:
            return None
        parsed = layout.parse_header(_git(root, "cat-file", "blob", blob))
    else:
        parsed = layout.parse_header(layout.header.read_bytes())
    if isinstance(parsed, State):
        return parsed  # format 1: the file is the whole state
    entries: dict[str, StateEntry] = {}
    prefix = _rel(root, layout.entries) + "/"
    clean = _git(root, "ls-files", "-s", "-z", "--full-name", "--", str(layout.entries))
    blobs: dict[str, str] = {}
    for record in clean.split(b"\0"):
        if record:
            meta, path = record.decode().split("\t", 1)
            if meta.split()[2] == "0":
                blobs[path] = meta.split()[1]
    for path, by_stage in stages.items():
        if path.startswith(prefix):
            blob = by_stage.get(k)
            if blob is not None:
                blobs[path] = blob
    for path, blob in sorted(blobs.items()):
        name = path[len(prefix):]
        if "/" in name or not name.endswith(ENTRY_SUFFIX) or name.startswith("."):
            continue
        entry_name = name[: -len(ENTRY_SUFFIX)]
        entries[entry_name] = layout.parse_entry(layout.entry(entry_name), _git(root, "cat-file", "blob", blob))
    return State(lineage=parsed.lineage, serial_base=parsed.serial_base, entries=entries,
                 serial=parsed.serial_base + sum(e.revision for e in entries.values()))


def _rel(root: Path, path: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def _write(layout: Layout, state: State) -> None:
    make_dirs(layout.entries)
    for path in layout.entry_files().values():
        if path.name[: -len(ENTRY_SUFFIX)] not in state.entries:
            path.unlink()
    for name, entry in state.entries.items():
        atomic_write(layout.entry(name), layout.render_entry(entry))
    fsync_dir(layout.entries)
    atomic_write(layout.header, layout.render_header(state))


def merge_file(base: bytes, ours: bytes, theirs: bytes, path: Path) -> tuple[bytes | None, list[str]]:
    """Merge one file of a state as a git merge driver does: the merged text (None: nothing to
    write), or the contradictions. ``base`` is empty when both sides added the file."""
    layout = Layout(path)
    if b'"lineage"' in ours or b'"lineage"' in theirs:
        parsed = [layout.parse_header(b) if b.strip() else None for b in (base, ours, theirs)]
        if any(isinstance(p, State) for p in parsed):
            return None, [f"{path}: a format-1 state (one file) cannot be merged file by file: run "
                          "`reconcile state merge`, which merges and migrates it"]
        sb, so, st = (State(lineage=p.lineage, serial_base=p.serial_base) if isinstance(p, Header) else None
                      for p in parsed)
        if so is None or st is None:
            return None, [f"{path}: the header is missing on one side"]
        header, problems = merge_headers(sb, so, st)
        return (layout.render_header(header) if header is not None else None), problems
    name = path.name[: -len(ENTRY_SUFFIX)] if path.name.endswith(ENTRY_SUFFIX) else path.name
    base_e, ours_e, theirs_e = (layout.parse_entry(path, b) if b.strip() else None for b in (base, ours, theirs))
    merged, problems = merge_entry(name, base_e, ours_e, theirs_e)
    return (layout.render_entry(merged) if merged is not None else None), problems


def driver_attributes(layout: Layout, root: Path) -> list[str]:
    """The ``.gitattributes`` lines that hand this state's files to the merge driver."""
    header = "/" + _rel(root, layout.header)
    return [f"{header} merge={DRIVER}", f"/{_rel(root, layout.entries)}/*{ENTRY_SUFFIX} merge={DRIVER}"]


DRIVER_COMMAND = "reconcile state merge-file %O %A %B %P"


def install_driver(layout: Layout) -> list[str]:
    """Add the attributes to the repository's ``.gitattributes`` and define the driver in its git
    config (``git config`` is per clone: each clone runs this once). Returns what it did."""
    root = repo_root(layout.directory)
    done = [f"git config merge.{DRIVER}.driver '{DRIVER_COMMAND}'"]
    _git(root, "config", f"merge.{DRIVER}.name", "reconcile state: merge by lineage and entry history")
    _git(root, "config", f"merge.{DRIVER}.driver", DRIVER_COMMAND)
    added = add_lines(root / ".gitattributes", driver_attributes(layout, root))
    if added:
        done.append(f"added to {root / '.gitattributes'}: " + "; ".join(added))
    return done


def add_lines(path: Path, lines: list[str], header: str = "# reconcile state") -> list[str]:
    """Append the ``lines`` missing from ``path`` (a git config-like list file); the lines added."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in lines if line not in present]
    if missing:
        block = ("" if not text or text.endswith("\n") else "\n") + ("\n" if text else "") + header + "\n"
        atomic_write(path, (text + block + "\n".join(missing) + "\n").encode("utf-8"))
    return missing


GITIGNORE_HEADER = "# reconcile: the state's working files (lock, temporary files, backups) stay out of git"


def write_gitignore(root: Path, layout: Layout) -> tuple[Path, list[str]]:
    """Create ``root/.gitignore`` with the state's working-file lines if there is none; the lines a
    present file lacks are returned instead (never edited: it is the user's)."""
    path = root / ".gitignore"
    lines = layout.gitignore(root)
    if not path.exists():
        atomic_write(path, (GITIGNORE_HEADER + "\n" + "\n".join(lines) + "\n").encode("utf-8"))
        return path, []
    present = {line.strip() for line in path.read_text(encoding="utf-8").splitlines()}
    return path, [line for line in lines if line not in present]
