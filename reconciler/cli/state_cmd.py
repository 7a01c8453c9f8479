"""`reconcile state ...`: work on the state itself (merging a git conflict in it; history, pull, push,
migrate and unlock are in ``state_remote_cmd.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.context import GlobalOptions
from reconciler.config import load_config
from reconciler.errors import StateError
from reconciler.state.gitmerge import install_driver, merge_conflicted, merge_file
from reconciler.state.layout import Layout
from reconciler.state.store import StateStore


@click.group("state")
def state() -> None:
    """Work on the state itself (kept under state/, committed with the specs)."""


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


from reconciler.cli.state_remote_cmd import COMMANDS  # noqa: E402  (history, pull, push, migrate, unlock)

for _command in COMMANDS:
    state.add_command(_command)
