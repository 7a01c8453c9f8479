"""`reconcile state history|pull|push|migrate|unlock`: the state as a whole, whichever backend keeps it.

Registered on the `state` group by ``state_cmd.py``; the logic is ``reconciler/state/transfer.py``'s.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from reconciler.cli.context import GlobalOptions
from reconciler.config import Config, PostgresStateConfig, load_config
from reconciler.errors import StateError
from reconciler.state.backend import StateVersion
from reconciler.state.backends import open_store, postgres_backend
from reconciler.state.store import StateStore
from reconciler.state.transfer import migrate, parse_document, push


@click.command("history")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def history(opts: GlobalOptions, fmt: str) -> None:
    """List the stored versions of the state, newest first (serial, when, written by whom).

    The postgres backend keeps every version (`reconcile state pull --serial N` prints one);
    the file backend keeps only the current one here: git is its history.
    """
    config = load_config(opts.config_path)
    store = open_store(config)
    versions = store.backend.history()
    if fmt == "json":
        click.echo(json.dumps([v.model_dump(mode="json") for v in versions], indent=2))
        return
    if not versions:
        click.echo(f"state {store.location} holds no state yet")
    else:
        click.echo(f"{'VERSION':>7}  {'SERIAL':>6}  {'WRITTEN':<25}  {'ENTRIES':>7}  BY")
        for v in versions:
            click.echo(f"{'-' if v.version is None else v.version:>7}  {v.serial:>6}  {_when(v):<25}  "
                       f"{v.entries:>7}  {_by(v)}")
    if config.state.backend == "file":
        click.echo(f"note: the file backend keeps only the current state (and each file's previous copy, "
                   f"*.backup); its history is git's: git log -p -- {config.relative(config.state_path.parent)}",
                   err=True)


def _when(v: StateVersion) -> str:
    return v.written_at.isoformat(timespec="seconds") if v.written_at else "-"


def _by(v: StateVersion) -> str:
    by = v.written_by
    if not by:
        return "-"
    return f"{by.get('operation')} by {by.get('user')}@{by.get('host')} (pid {by.get('pid')})"


@click.command("pull")
@click.option("--serial", type=click.IntRange(min=1), default=None,
              help="Print this earlier version (see `reconcile state history`) instead of the current one.")
@click.pass_obj
def pull(opts: GlobalOptions, serial: int | None) -> None:
    """Print the state as one JSON document (to keep, inspect, or edit and push back)."""
    store = open_store(load_config(opts.config_path))
    state = store.read() if serial is None else store.backend.version(serial)
    if state.serial == 0:
        raise StateError(f"state {store.location} holds no state yet")
    click.echo(state.to_json(), nl=False)


@click.command("push")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.pass_obj
def push_cmd(opts: GlobalOptions, file: Path) -> None:
    """Replace the state with FILE (a document `reconcile state pull` wrote; - reads stdin).

    Refused unless FILE has the stored state's lineage and serial, i.e. it was pulled from this
    state and nothing was written since (pull again, redo the edit). Into a backend that holds
    no state yet, FILE is stored as it is. Entries you edited get their next revision.
    """
    where = "stdin" if str(file) == "-" else str(file)
    raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    pushed = parse_document(raw, where)
    store = open_store(load_config(opts.config_path))
    stored = push(store, pushed, where)
    click.echo(f"pushed {where} to state {store.location}: serial {stored.serial}, {len(stored.entries)} entries")


@click.command("migrate")
@click.option("--to", "to", type=click.Choice(["postgres", "file"]), required=True,
              help="postgres: from the state file to the database; file: from the database to the state file.")
@click.option("--workspace", default=None,
              help="The database workspace (default: state.workspace in reconcile.yaml).")
@click.option("--dsn-env", default=None, metavar="VAR",
              help="Environment variable holding the DSN (default: state.dsn_env, or RECONCILE_STATE_DSN).")
@click.pass_obj
def migrate_cmd(opts: GlobalOptions, to: str, workspace: str | None, dsn_env: str | None) -> None:
    """Move the state between the file (state_path) and a PostgreSQL workspace, under both locks.

    The target must hold no state, or the same state's lineage (it is then brought up to date);
    another lineage is refused. The source is left as it was. Then point reconcile.yaml at the
    target (state: {backend: postgres, workspace: NAME} or state: {backend: file}).

    \b
    Moving a repository's state into the database:
      RECONCILE_STATE_DSN=postgresql://USER:PASSWORD@HOST/DB reconcile state migrate --to postgres --workspace prod
    """
    config = load_config(opts.config_path)
    settings = _postgres(config, workspace, dsn_env)
    files = StateStore(config.state_path)
    database = StateStore(config.state_path, backend=postgres_backend(settings))
    source, target = (files, database) if to == "postgres" else (database, files)
    done = migrate(source, target)
    state = done.state
    what = f"serial {state.serial}, lineage {state.lineage}, {len(state.entries)} entries"
    if done.copied:
        click.echo(f"migrated state {source.location} to {target.location} ({what}); read back identical")
    else:
        click.echo(f"state {target.location} already holds this state ({what}); nothing to do")
    if config.state.backend != to:
        setting = f"{{backend: postgres, workspace: {settings.workspace}}}" if to == "postgres" else "{backend: file}"
        click.echo(f"next: set `state: {setting}` in reconcile.yaml so that runs use it; {source.location} "
                   "is left as it was (remove it once nothing reads it)", err=True)


def _postgres(config: Config, workspace: str | None, dsn_env: str | None) -> PostgresStateConfig:
    base = config.state.model_dump() if isinstance(config.state, PostgresStateConfig) else {"backend": "postgres"}
    if workspace is not None:
        base["workspace"] = workspace
    if dsn_env is not None:
        base["dsn_env"] = dsn_env
    if "workspace" not in base:
        raise click.UsageError("reconcile.yaml names no postgres workspace: pass --workspace NAME")
    return PostgresStateConfig.model_validate(base)


@click.command("unlock")
@click.argument("lock_id", metavar="ID")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def unlock(opts: GlobalOptions, lock_id: str, force: bool) -> None:
    """Release the state lock ID whose run is gone or hung (ID: from the 'is locked' error).

    Rarely needed: a lock dies with its holder (the OS releases a file lock when its process
    ends; the database, a lock whose session ends). postgres: ends the session holding the lock,
    so a run still going stops at its next state write. file: removes the record of a lock whose
    process is gone, and refuses while the process lives (stop it instead).
    """
    store = open_store(load_config(opts.config_path))
    if not force:
        click.confirm(f"Release lock {lock_id} on state {store.location}? A run still holding it stops at "
                      "its next state write", abort=True)
    click.echo(store.unlock(lock_id))


COMMANDS = (history, pull, push_cmd, migrate_cmd, unlock)
