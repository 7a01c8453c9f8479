"""`reconcile plan`: refresh, diff and print the ordered plan; optionally save it for `apply FILE`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from reconciler.cli import exit_codes
from reconciler.cli.context import GlobalOptions
from reconciler.cli.project import load_project, plan_options
from reconciler.cli.wiring import open_client
from reconciler.config import Config
from reconciler.plan.pipeline import PlanResult, build_plan
from reconciler.plan.planner import PlanOptions
from reconciler.plan.render import FORMATS, render
from reconciler.plan.saved import save_plan
from reconciler.spec.loader import LoadedSpecs
from reconciler.state.backends import open_store
from reconciler.state.model import State


async def _plan(opts: GlobalOptions, config: Config, specs: LoadedSpecs, state: State, options: PlanOptions,
                refresh: bool) -> PlanResult:
    if not refresh:
        return await build_plan(specs, state, None, options)
    async with open_client(opts, config) as client:
        return await build_plan(specs, state, client, options)


@click.command("plan")
@click.option("--out", "-out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the plan (JSON with a checksum) for `reconcile apply FILE`.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text for people, markdown for pull requests, json for tools.")
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Plan only this enrollment (repeatable). For exceptional cases; always warned.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes, 1 on error.")
@click.option("--refresh", type=click.BOOL, is_flag=False, flag_value=True, default=True, show_default=True,
              metavar="[true|false]", help="Read CPS first (--refresh=false or --no-refresh: plan from state alone).")
@click.option("--no-refresh", is_flag=True, help="Plan from the state file alone, without reading CPS.")
@click.option("--allow-delete", is_flag=True,
              help="Plan deletes of enrollments whose spec was removed or that a replacement supersedes "
                   "(each only after the specs taking over its names are deployed).")
@click.option("--force", is_flag=True,
              help="Plan even above the mass-change thresholds, or with specs behind the last apply.")
@click.option("--cancel-pending", is_flag=True,
              help="Allow updates and deletes that cancel a change in flight (never done silently).")
@click.option("--create-duplicate", "create_duplicates", multiple=True, metavar="NAME",
              help="Create NAME anew although unbound enrollments with its CN exist (repeatable; "
                   "otherwise such a spec is refused as ambiguous).")
@click.pass_obj
def plan(opts: GlobalOptions, out: Path | None, fmt: str, targets: tuple[str, ...], detailed_exitcode: bool,
         refresh: bool, no_refresh: bool, allow_delete: bool, force: bool, cancel_pending: bool,
         create_duplicates: tuple[str, ...]) -> None:
    """Show what apply would do: creates, adoptions, updates, workflow steps to continue, deletes.

    Reads the specs, the state file and (unless --no-refresh) CPS; never changes anything.
    Exit codes with --detailed-exitcode: 0 no changes, 1 error, 2 changes present (blocked
    actions count as changes; changes that only wait on CPS do not).
    """
    config, specs = load_project(opts)
    state = open_store(config).read()
    options = plan_options(config, targets=targets, allow_delete=allow_delete, force=force,
                           cancel_pending=cancel_pending, create_duplicates=create_duplicates)
    do_refresh = refresh and not no_refresh
    if not do_refresh:
        click.secho("Planning WITHOUT refreshing from CPS: changes made outside reconciler and workflow "
                    "progress are not seen.", err=True, fg="yellow" if opts.color else None, bold=opts.color)
    result = asyncio.run(_plan(opts, config, specs, state, options, do_refresh))
    text = render(result.plan, fmt, color=opts.color)  # type: ignore[arg-type]
    click.echo(text, nl=False)  # click strips the colours when stdout is not a terminal
    if out is not None:
        checksum = save_plan(result.plan, out)
        click.echo(f"Saved the plan to {out} ({checksum}); apply exactly this plan with "
                   f"`reconcile apply {out}`.", err=True)
    result.plan.ensure_safe()
    if detailed_exitcode and result.plan.has_changes:
        raise click.exceptions.Exit(exit_codes.CHANGES)
