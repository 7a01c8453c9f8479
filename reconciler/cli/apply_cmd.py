"""`reconcile apply [PLANFILE]`: execute the plan and walk every enrollment to a deployed certificate."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

import click
import httpx

from reconciler.apply.context import PollPolicy
from reconciler.apply.executor import ApplyOptions
from reconciler.apply.progress import make_progress
from reconciler.apply.propagation import ChallengeChecker
from reconciler.apply.publishers import PublisherFactory
from reconciler.apply.runner import ApplyRun, run_apply
from reconciler.cli.context import GlobalOptions
from reconciler.cli.project import load_project, plan_options
from reconciler.cli.wiring import CA_BUNDLE_ENV, LocalSandboxClient, credentials_for, open_client
from reconciler.config import Config
from reconciler.cps.auth import EdgeGridAuth
from reconciler.cps.client import CpsClient
from reconciler.errors import ConfigError
from reconciler.plan.model import Plan
from reconciler.plan.render import render
from reconciler.state.backends import open_store

POLL_ENV = "RECONCILE_POLL_INTERVAL"
"""Seconds before the first re-read of a change (backing off to 6x). Default 10, 0.05 with --sandbox."""


def poll_policy(opts: GlobalOptions) -> PollPolicy:
    raw = os.environ.get(POLL_ENV)
    if raw:
        try:
            first = float(raw)
        except ValueError:
            raise ConfigError(f"{POLL_ENV} must be a number of seconds, not {raw!r}") from None
        return PollPolicy(initial=first, maximum=max(first, first * 6))
    if opts.sandbox:
        # The local sandbox runs its clock fast: CPS minutes pass in real milliseconds.
        return PollPolicy(initial=0.05, maximum=0.5)
    return PollPolicy()


def edgedns_factory(opts: GlobalOptions, config: Config, client: CpsClient,
                    opened: list[httpx.AsyncClient]) -> Callable[[], httpx.AsyncClient]:
    """Edge DNS client with the same credentials (and the same sandbox) as CPS, made on first use."""
    def make() -> httpx.AsyncClient:
        if opened:
            return opened[0]
        if isinstance(client, LocalSandboxClient):
            sandbox = client.sandbox
            http = httpx.AsyncClient(base_url=sandbox.base_url, transport=sandbox.transport,
                                     auth=EdgeGridAuth(sandbox.credentials), timeout=30.0)
        else:
            credentials = credentials_for(opts, config)
            bundle = os.environ.get(CA_BUNDLE_ENV) or (str(config.ca_bundle) if config.ca_bundle else None)
            verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=bundle) if bundle else True
            http = httpx.AsyncClient(base_url=f"https://{credentials.host}", auth=EdgeGridAuth(credentials),
                                     verify=verify, timeout=30.0)
        opened.append(http)
        return http
    return make


def _confirm(plan: Plan) -> bool:
    click.echo("\nDo you want to perform these actions? Only 'yes' will be accepted.")
    answer: str = click.prompt("  Enter a value", default="", show_default=False, prompt_suffix=": ")
    return answer.strip() == "yes"


def _summary(run: ApplyRun, color: bool) -> list[str]:
    styles = {"done": "green", "submitted": "cyan", "waiting": "yellow", "held": "yellow", "failed": "red",
              "timeout": "red"}
    lines = []
    result = run.result
    for outcome in result.outcomes if result else []:
        head = f"{outcome.name}: {outcome.status} - {outcome.message}"
        lines.append(click.style(head, fg=styles[outcome.status]) if color else head)
        lines += [f"    {d}" for d in outcome.details]
    for blocked in run.plan.blocked:
        lines.append(f"{blocked.name}: not applied ({blocked.kind}) - {blocked.blocked}; {blocked.remedy}")
    if result:
        counts = {s: sum(1 for o in result.outcomes if o.status == s) for s in styles}
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        if run.plan.blocked:
            parts.append(f"{len(run.plan.blocked)} blocked (not applied)")
        lines.append(f"Apply complete: {', '.join(parts) or 'nothing to do'}.")
    return lines


@click.command("apply")
@click.argument("planfile", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--auto-approve", is_flag=True, help="Do not ask for 'yes' before changing anything.")
@click.option("--target", "targets", multiple=True, metavar="NAME", help="Apply only this enrollment (repeatable).")
@click.option("--parallelism", type=click.IntRange(1, 100), default=None,
              help="Enrollments worked on at once (default: reconcile.yaml parallelism, 10).")
@click.option("--no-wait", is_flag=True, help="Give CPS what it asks for now, but do not wait for deployment.")
@click.option("--timeout", type=click.FloatRange(min=0), default=3600.0, show_default=True,
              help="Seconds the whole apply may wait on CPS.")
@click.option("--allow-delete", is_flag=True,
              help="Delete enrollments whose spec was removed or that a replacement supersedes (each only "
                   "after the specs taking over its names serve them from a deployed certificate).")
@click.option("--force", is_flag=True,
              help="Apply even above the mass-change thresholds, or with specs behind the last apply.")
@click.option("--cancel-pending", is_flag=True, help="Allow updates and deletes that cancel a change in flight.")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to wait for another run's state lock.")
@click.option("--create-duplicate", "create_duplicates", multiple=True, metavar="NAME",
              help="Create NAME anew although unbound enrollments with its CN exist (repeatable; "
                   "otherwise such a spec is refused as ambiguous).")
@click.pass_obj
def apply(opts: GlobalOptions, planfile: Path | None, auto_approve: bool, targets: tuple[str, ...],
          parallelism: int | None, no_wait: bool, timeout: float, allow_delete: bool, force: bool,
          cancel_pending: bool, lock_timeout: float, create_duplicates: tuple[str, ...]) -> None:
    """Make CPS match the specs and drive every enrollment until its certificate is deployed.

    Without PLANFILE it plans first, shows the plan and asks for 'yes' (unless --auto-approve);
    with a saved plan (`reconcile plan --out FILE`) it applies exactly that plan, refusing a
    stale one. Exit codes: 0 done, 1 error or an action the plan blocked (a delete without
    --allow-delete too), 3 some enrollment waits on a person (DV challenges to publish, a
    certificate to sign, warnings or change management to acknowledge).
    """
    config, specs = load_project(opts)
    store = open_store(config)
    options = plan_options(config, targets=targets, allow_delete=allow_delete, force=force,
                           cancel_pending=cancel_pending, create_duplicates=create_duplicates)
    apply_options = ApplyOptions(parallelism=parallelism or config.parallelism, timeout=timeout, no_wait=no_wait,
                                 poll=poll_policy(opts))

    def show(plan: Plan) -> None:
        click.echo(render(plan, "text", color=opts.color), nl=False)

    confirm = (lambda plan: True) if auto_approve else _confirm

    async def go() -> ApplyRun:
        opened: list[httpx.AsyncClient] = []
        async with open_client(opts, config) as client:
            progress = None
            try:
                def report(name: str, step: str, detail: str) -> None:
                    nonlocal progress
                    if progress is None:
                        progress = make_progress(sys.stderr, color=opts.color)
                    progress(name, step, detail)

                publishers = PublisherFactory(root=config.root, state_dir=config.state_path.parent,
                                              run_id=os.urandom(8).hex(),
                                              edgedns_client=edgedns_factory(opts, config, client, opened),
                                              check_by_default=client.real_cps,
                                              checker=ChallengeChecker.from_config(config))
                return await run_apply(config=config, specs=specs, store=store, client=client,
                                       plan_file=planfile, plan_options=options, apply_options=apply_options,
                                       show=show, confirm=confirm, report=report, publishers=publishers,
                                       run_id=publishers.run_id)
            finally:
                if progress is not None:
                    progress.close()
                for http in opened:
                    await http.aclose()

    with store.lock("apply", timeout=lock_timeout):
        run = asyncio.run(go())
    if run.status == "cancelled":
        click.echo("Apply cancelled.", err=True)
    for line in _summary(run, opts.color):
        click.echo(line)
    raise click.exceptions.Exit(run.exit_code)
