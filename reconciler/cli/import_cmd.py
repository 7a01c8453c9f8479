"""`reconcile import`: adopt existing enrollments as spec files bound in state (no change in CPS)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from reconciler.cli.context import GlobalOptions
from reconciler.cli.wiring import open_client
from reconciler.config import Config, load_config
from reconciler.cps.models import Enrollment
from reconciler.observe.importer import bind, fetch, write_specs
from reconciler.state.store import StateStore


async def _fetch(opts: GlobalOptions, config: Config, contract: str, ids: list[int] | None) -> list[Enrollment]:
    async with open_client(opts, config) as client:
        return await fetch(client, contract, ids)


@click.command("import")
@click.option("--contract", default=None, help="Contract to import from (default: default_contract).")
@click.option("--enrollment-id", "ids", type=int, multiple=True, help="Import this enrollment (repeatable).")
@click.option("--all", "import_all", is_flag=True, help="Import every enrollment of the contract not yet managed.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the spec files (default: the specs directory).")
@click.pass_obj
def import_(opts: GlobalOptions, contract: str | None, ids: tuple[int, ...], import_all: bool,
            out: Path | None) -> None:
    """Write one spec per existing enrollment and bind it in state; the next plan is empty.

    Names come from the common name (collisions get the enrollment id appended). Enrollments
    already in state are skipped. Nothing is changed in CPS.
    """
    if bool(ids) == import_all:
        raise click.UsageError("give --enrollment-id N (repeatable) or --all, not both")
    config = load_config(opts.config_path)
    contract_id = contract or config.default_contract
    if not contract_id:
        raise click.UsageError("no --contract and no default_contract in reconcile.yaml")
    store = StateStore(config.state_path)
    with store.lock("import"):
        enrollments = asyncio.run(_fetch(opts, config, contract_id, None if import_all else list(ids)))
        state = store.read()
        imported, skipped = write_specs(enrollments, state, config, contract_id, out or config.specs_dir)
        store.write(bind(state, config, imported, contract_id))
    for item in imported:
        click.echo(f"imported {item.common_name} (enrollment {item.enrollment_id}) as {item.name}: {item.file}")
    for eid in skipped:
        click.echo(f"skipped enrollment {eid}: already managed", err=True)
    click.echo(f"{len(imported)} imported, {len(skipped)} already managed.")
