"""`reconcile challenges NAME`: the DV challenges to publish by hand, live from CPS or from the ledger."""

from __future__ import annotations

import asyncio

import click

from reconciler.cli.context import GlobalOptions
from reconciler.cli.wiring import open_client
from reconciler.config import Config, load_config
from reconciler.errors import ConfigError, CpsApiError, StateError
from reconciler.observe.exports import (
    FORMATS,
    ChallengeExport,
    ledger_challenges,
    live_challenges,
    render_challenges,
)
from reconciler.state.model import StateEntry
from reconciler.state.store import StateStore


async def _live(opts: GlobalOptions, config: Config, name: str, entry: StateEntry) -> ChallengeExport | None:
    async with open_client(opts, config) as client:
        return await live_challenges(client, name, entry)


@click.command("challenges")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people, zone for a DNS zone file (dns-01 TXT records), json for tools.")
@click.pass_obj
def challenges(opts: GlobalOptions, name: str, fmt: str) -> None:
    """Show the DV challenges of NAME's pending change, for publishing them by hand.

    Read live from CPS; when CPS cannot be reached or has no pending change, falls back to what
    apply last recorded under state/challenges/ (and says so on stderr).
    """
    config = load_config(opts.config_path)
    entry = StateStore(config.state_path).read().entry(name)
    if entry is None:
        raise StateError(f"{name}: not in the state file (apply or import it first)")
    export: ChallengeExport | None = None
    try:
        export = asyncio.run(_live(opts, config, name, entry))
    except (CpsApiError, ConfigError) as exc:  # offline or no credentials: the ledger is still useful
        click.echo(f"note: could not read CPS ({exc.__class__.__name__}); showing the local ledger", err=True)
    if export is None:
        export = ledger_challenges(config.state_path.parent, name)
        if export is None:
            raise StateError(f"{name}: no pending change in CPS and no challenge recorded locally")
        click.echo(f"note: from the ledger of change {export.change_id}, not live from CPS", err=True)
    click.echo(render_challenges(export, fmt), nl=False)
