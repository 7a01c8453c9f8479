"""`reconcile state list|show|mv|rm|merge`: look at and repair the state, Terraform-style, under the lock
(history, pull, push, migrate and unlock are in ``state_remote_cmd.py``).

Nothing here talks to CPS. Every edit takes the state lock and writes the state through the store;
the edits themselves live in ``reconciler.state.surgery`` and ``reconciler.state.merge``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from reconciler.apply import workfiles
from reconciler.cli.context import GlobalOptions
from reconciler.config import load_config
from reconciler.errors import StateError
from reconciler.state import surgery
from reconciler.state.backends import open_store
from reconciler.state.gitmerge import install_driver, merge_conflicted, merge_file
from reconciler.state.layout import Layout
from reconciler.state.model import State, StateEntry
from reconciler.state.store import StateStore


def _store(opts: GlobalOptions) -> StateStore:
    return open_store(load_config(opts.config_path))


def _state_dir(opts: GlobalOptions) -> Path:
    return load_config(opts.config_path).state_path.parent


def _doing(entry: StateEntry) -> str:
    if entry.intent is not None:
        return f"{entry.intent.op} (interrupted?)"
    if entry.replaced_by is not None:
        return f"replaced by {entry.replaced_by}"
    if entry.change is not None:
        return f"change {entry.change.change_id} {entry.change.status or ''}".rstrip()
    return "-"


def _edit(opts: GlobalOptions, lock_timeout: float, edit: Callable[[State], State],
          files: Callable[[Path], object] = lambda _: None) -> State:
    """Apply ``edit`` under the lock, then ``files(state_dir)`` (the entry's working files)."""
    store = _store(opts)
    with store.lock("state", timeout=lock_timeout):
        written = store.write(edit(store.read()))
        files(store.path.parent)
        return written


_LOCK_TIMEOUT = click.option("--lock-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
                             help="Seconds to wait for another run's state lock.")


@click.group("state")
def state() -> None:
    """Look at and repair the state that binds spec names to CPS enrollments (kept under state/,
    committed with the specs).

    \b
      reconcile state list              every entry: name, enrollment, contract, CN, what is in flight
      reconcile state show NAME         one entry as JSON
      reconcile state mv OLD NEW        rename a binding (after renaming a spec's `name:`)
      reconcile state rm NAME           forget an entry; its enrollment stays in CPS, unmanaged
      reconcile state merge             finish a git merge whose state files conflicted

    Edits take the state lock and keep the previous copy as the backup. They never call CPS. A
    plan usually detects a rename by itself (or use `moved_from:` in the spec); `state mv` is for
    everything else.
    """




@state.command("merge")
@click.option("--install", is_flag=True,
              help="Install the git merge driver in this clone instead (git config + .gitattributes), so that "
                   "git merges the state by itself from then on.")
@click.pass_obj
def merge(opts: GlobalOptions, install: bool) -> None:
    """Finish a git merge, rebase or cherry-pick whose state files conflicted.

    Reads the base, ours and theirs versions git keeps for every conflicted state file, merges
    them by lineage and per-entry history (the same entry changed on both sides: newer facts
    win field by field), writes the result and stages it (git add); then commit as usual.
    Refuses, writing nothing, only real contradictions: two histories (different lineages), one
    name bound to two enrollments, an entry removed on one side and changed on the other.
    A state still in the one-file format 1 is merged too, and written in the current layout.

    \b
    Once per clone, let git do it during the merge:
      reconcile state merge --install
    """
    config = load_config(opts.config_path)
    layout = Layout(config.state_path)
    if install:
        for line in install_driver(layout):
            click.echo(line)
        return
    store = StateStore(config.state_path)  # git conflicts exist only in a file state
    with store.lock("state merge"):
        resolved = merge_conflicted(layout)
        store.read()  # what every command will read next: must load
    if resolved is None:
        click.echo(f"no conflicted state file in git's index under {layout.directory}; the state reads fine")
        return
    what = ", ".join(resolved.merged) or "none"
    gone = f"; removed: {', '.join(resolved.removed)}" if resolved.removed else ""
    click.echo(f"state merged and staged ({layout.header}, {layout.entries}/): entries merged: {what}{gone}. "
               "Commit to finish the merge.")


@state.command("merge-file", hidden=True)
@click.argument("base", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("ours", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("theirs", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("path", type=click.Path(path_type=Path), required=False)
def merge_file_cmd(base: Path, ours: Path, theirs: Path, path: Path | None) -> None:
    """The git merge driver (git config merge.reconcile-state.driver 'reconcile state merge-file %O %A %B %P').

    Writes the merged file over OURS and exits 0, or leaves conflict markers in OURS, says why on
    stderr and exits 1 (git then reports the conflict; `reconcile state merge` explains it again).
    """
    name = path if path is not None else ours
    o, t = ours.read_bytes(), theirs.read_bytes()
    try:
        merged, problems = merge_file(base.read_bytes(), o, t, name)
    except StateError as exc:
        merged, problems = None, [str(exc)]
    if problems or merged is None:
        for problem in problems or [f"{name}: cannot be merged file by file"]:
            click.echo(f"reconcile state merge-file: {problem}", err=True)
        ours.write_bytes(b"<<<<<<< ours\n" + o + b"=======\n" + t + b">>>>>>> theirs\n")
        sys.exit(1)
    ours.write_bytes(merged)


@state.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def list_(opts: GlobalOptions, fmt: str) -> None:
    """List every state entry."""
    current = _store(opts).read()
    if fmt == "json":
        rows = [{"name": n, "enrollment_id": e.enrollment_id, "contract_id": e.contract_id,
                 "common_name": e.common_name, "doing": _doing(e)} for n, e in sorted(current.entries.items())]
        click.echo(json.dumps({"lineage": current.lineage, "serial": current.serial, "entries": rows}, indent=2))
        return
    if not current.entries:
        click.echo("No state entries.")
        return
    rows_text = [("NAME", "ENROLLMENT", "CONTRACT", "CN", "IN FLIGHT")]
    rows_text += [(n, str(e.enrollment_id) if e.enrollment_id is not None else "-", e.contract_id, e.common_name,
                   _doing(e)) for n, e in sorted(current.entries.items())]
    widths = [max(len(r[i]) for r in rows_text) for i in range(4)]
    for row in rows_text:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4])


@state.command("show")
@click.argument("name")
@click.pass_obj
def show(opts: GlobalOptions, name: str) -> None:
    """Print the entry NAME as JSON."""
    current = _store(opts).read()
    entry = surgery.entry(current, name)
    click.echo(json.dumps({name: entry.model_dump(mode="json")}, indent=2, sort_keys=True))


@state.command("mv")
@click.argument("old")
@click.argument("new")
@_LOCK_TIMEOUT
@click.pass_obj
def mv(opts: GlobalOptions, old: str, new: str, lock_timeout: float) -> None:
    """Bind NEW to OLD's enrollment and forget OLD; OLD's challenge and CSR files move too.
    Nothing changes in CPS.

    Refused when NEW already has an entry: a move never overwrites a binding.
    """
    written = _edit(opts, lock_timeout, lambda s: surgery.move(s, old, new),
                    lambda state_dir: workfiles.rename(state_dir, old, new))
    click.echo(f"Moved {old} -> {new} (state serial {written.serial}).")


@state.command("rm")
@click.argument("name")
@click.option("--force", is_flag=True, help="Forget it even while an operation is in flight on it.")
@_LOCK_TIMEOUT
@click.pass_obj
def rm(opts: GlobalOptions, name: str, force: bool, lock_timeout: float) -> None:
    """Forget NAME (and its challenge and CSR files). Its enrollment is NOT deleted in CPS: it
    becomes unmanaged, and `reconcile import --enrollment-id ID` adopts it again.

    Refused while an operation is in flight on it (an interrupted create may have made an
    enrollment that only this entry remembers), unless --force.
    """
    forgotten: list[StateEntry] = []

    def edit(current: State) -> State:
        forgotten.append(surgery.entry(current, name))
        return surgery.forget(current, name, force=force)

    written = _edit(opts, lock_timeout, edit, lambda state_dir: workfiles.forget(state_dir, name))
    gone = forgotten[0]
    if gone.enrollment_id is None:
        click.echo(f"Forgot {name} (state serial {written.serial}).")
        return
    click.echo(f"Forgot {name}; enrollment {gone.enrollment_id} stays in CPS, now unmanaged (state serial "
               f"{written.serial}). To manage it again: reconcile import --contract {gone.contract_id} "
               f"--enrollment-id {gone.enrollment_id}")


from reconciler.cli.state_remote_cmd import COMMANDS  # noqa: E402  (history, pull, push, migrate, unlock)

for _command in COMMANDS:
    state.add_command(_command)
