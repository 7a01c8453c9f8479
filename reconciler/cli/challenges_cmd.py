"""`reconcile challenges NAME`: the DV challenges to publish by hand, live from CPS or from the
ledger; `--check` asks the nameservers (or the URL) whether they serve them; `--confirm-published`
records a person's word for the manual publisher."""

from __future__ import annotations

import asyncio

import click

from reconciler.apply.propagation import ChallengeChecker, CheckReport
from reconciler.apply.publishers.ledger import ChallengeLedger
from reconciler.apply.workfiles import challenges_dir
from reconciler.cli import exit_codes
from reconciler.cli.context import GlobalOptions
from reconciler.cli.wiring import open_client
from reconciler.config import Config, load_config
from reconciler.errors import ConfigError, CpsApiError, ReconcileError, StateError
from reconciler.observe.exports import (
    FORMATS,
    ChallengeExport,
    ledger_challenges,
    live_challenges,
    render_challenges,
    render_check,
)
from reconciler.spec.loader import load_specs
from reconciler.spec.models import DvEnrollmentSpec
from reconciler.state.backends import open_store
from reconciler.state.model import StateEntry


async def _live(opts: GlobalOptions, config: Config, name: str, entry: StateEntry) -> ChallengeExport | None:
    async with open_client(opts, config) as client:
        return await live_challenges(client, name, entry)


def _method(config: Config, name: str, ledger: ChallengeLedger) -> set[str] | None:
    """The challenge type(s) the enrollment uses: from its spec, else from what apply recorded."""
    try:
        for loaded in load_specs(config).specs:
            if loaded.spec.name == name and isinstance(loaded.spec, DvEnrollmentSpec):
                return {loaded.spec.validation.method}
    except ReconcileError:
        pass  # another spec's problem must not hide these challenges
    entry = ledger.read()
    return {r.type for r in entry.records} if entry is not None and entry.records else None


@click.command("challenges")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people, zone for a DNS zone file (dns-01 TXT records), json for tools.")
@click.option("--check", is_flag=True,
              help="Ask every authoritative nameserver (dns-01) or the challenge URL (http-01) whether it serves "
                   "each challenge, as apply does before acknowledging; a table of every answer. Exit 3 when "
                   "something is not served yet.")
@click.option("--confirm-published", is_flag=True,
              help="Manual publisher: record in state/challenges/NAME.json that you published the challenges "
                   "apply showed, so the next apply acknowledges them (commit that file where CI applies). "
                   "With --check, only when they are served.")
@click.pass_obj
def challenges(opts: GlobalOptions, name: str, fmt: str, check: bool, confirm_published: bool) -> None:
    """Show the DV challenges of NAME's pending change, for publishing them by hand.

    Read live from CPS; when CPS cannot be reached or has no pending change, falls back to what
    apply last recorded under state/challenges/ (and says so on stderr).

    \b
      reconcile challenges www                        table: domain, type, where, value
      reconcile challenges www --check                does every nameserver serve them?
      reconcile challenges www --confirm-published    manual publisher: I published them
    """
    config = load_config(opts.config_path)
    if check and fmt == "zone":
        raise ConfigError("--check prints a table or json, not a zone file")
    entry = open_store(config).read().entry(name)
    if entry is None:
        raise StateError(f"{name}: not in the state file (apply or import it first)")
    ledger = ChallengeLedger(challenges_dir(config.state_path.parent), name)
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
    report: CheckReport | None = None
    if check:
        methods = _method(config, name, ledger)
        records = [r for r in export.records if methods is None or r.type in methods]
        report = asyncio.run(ChallengeChecker.from_config(config).look(records))
        click.echo(render_check(report, fmt), nl=False)
    else:
        click.echo(render_challenges(export, fmt), nl=False)
    if confirm_published:
        _confirm(config, ledger, export, report)
    if report is not None and not report.visible:
        raise click.exceptions.Exit(exit_codes.WAITING)


def _confirm(config: Config, ledger: ChallengeLedger, export: ChallengeExport, report: CheckReport | None) -> None:
    recorded = ledger.read()
    if recorded is None:
        raise StateError(f"{ledger.name}: apply has not recorded challenges to publish yet "
                         f"({config.relative(ledger.path)} is missing); run reconcile apply first")
    if recorded.publisher != "manual":
        raise ConfigError(f"{ledger.name}: challenges are published by the {recorded.publisher} publisher; "
                          "--confirm-published is for the manual one")
    if export.source == "cps":
        live = {r.key for r in export.records if r.type in {x.type for x in recorded.records}}
        if export.change_id != recorded.change_id or live != {r.key for r in recorded.records}:
            raise StateError(f"{ledger.name}: CPS now asks for other challenges than "
                             f"{config.relative(ledger.path)} holds; run reconcile apply to record (and show) them")
    if report is not None and not report.visible:
        click.echo(f"not confirmed: {len(report.missing)} record(s) not served yet", err=True)
        return
    ledger.confirm()
    click.echo(f"confirmed: {len(recorded.records)} challenge(s) of change {recorded.change_id} recorded as "
               f"published in {config.relative(ledger.path)}; commit it where CI applies, then run "
               "reconcile apply", err=True)
