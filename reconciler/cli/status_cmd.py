"""`reconcile status`: the estate at a glance (pending changes, expiry, drift); a daily CI check."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click

from reconciler.cli import exit_codes
from reconciler.cli.context import GlobalOptions
from reconciler.cli.project import revision_of, uploaded_certificates
from reconciler.cli.wiring import open_client
from reconciler.config import Config, load_config
from reconciler.observe.status import DEFAULT_THRESHOLD_DAYS, StatusRow, collect_status, expiring
from reconciler.observe.status_render import FORMATS, render_status
from reconciler.spec.loader import LoadedSpecs, load_specs
from reconciler.state.backends import open_store
from reconciler.state.model import State


async def _collect(opts: GlobalOptions, config: Config, specs: LoadedSpecs, state: State) -> list[StatusRow]:
    async with open_client(opts, config) as client:
        return await collect_status(specs, state, client, datetime.now(UTC), revision=revision_of(config))


@click.command("status")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for people, markdown for issues and pull requests, json for tools.")
@click.option("--expiring-within", "within", type=click.IntRange(min=0), default=None, metavar="DAYS",
              help="Exit 1 when a deployed certificate (staging or production) expires in fewer than DAYS days.")
@click.option("--threshold", type=click.IntRange(min=0), default=DEFAULT_THRESHOLD_DAYS, show_default=True,
              metavar="DAYS", help="Highlight expiry under this many days (defaults to --expiring-within if given).")
@click.pass_obj
def status(opts: GlobalOptions, fmt: str, within: int | None, threshold: int) -> None:
    """One row per enrollment in specs and/or state: id, type, CN, SANs, pending change and what it
    waits for, staging and production expiry (days left), and drift. Reads CPS; changes nothing."""
    config = load_config(opts.config_path)
    specs = load_specs(config, uploaded=uploaded_certificates(config))
    state = open_store(config).read()
    rows = asyncio.run(_collect(opts, config, specs, state))
    mark = within if within is not None else threshold
    click.echo(render_status(rows, fmt, mark), nl=False)
    if within is not None:
        soon = expiring(rows, within)
        if soon:
            click.echo(f"{len(soon)} enrollment(s) with a certificate expiring within {within} days: "
                       + ", ".join(r.name for r in soon), err=True)
            raise click.exceptions.Exit(exit_codes.ERROR)
