"""`reconcile csr NAME`: write the third-party CSRs of NAME's pending change to files for signing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from reconciler.apply.workfiles import csr_dir
from reconciler.cli.context import GlobalOptions
from reconciler.cli.wiring import open_client
from reconciler.config import Config, load_config
from reconciler.errors import StateError
from reconciler.observe.exports import export_csrs
from reconciler.state.backends import open_store
from reconciler.state.model import StateEntry


async def _export(opts: GlobalOptions, config: Config, name: str, entry: StateEntry, out: Path) -> list[Path]:
    async with open_client(opts, config) as client:
        return await export_csrs(client, name, entry, out)


@click.command("csr")
@click.argument("name")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for <name>.<rsa|ecdsa>.csr.pem (default: state/csr/ beside the state file).")
@click.pass_obj
def csr(opts: GlobalOptions, name: str, out: Path | None) -> None:
    """Fetch the CSRs of NAME's pending third-party change and print the paths written."""
    config = load_config(opts.config_path)
    entry = open_store(config).read().entry(name)
    if entry is None:
        raise StateError(f"{name}: not in the state file (apply or import it first)")
    directory = out if out is not None else csr_dir(config.state_path.parent)
    for path in asyncio.run(_export(opts, config, name, entry, directory)):
        click.echo(str(path))
