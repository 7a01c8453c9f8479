"""What plan and apply both start from: the config, the loaded specs (notices on stderr) and the
planning options built from flags and reconcile.yaml's safety settings."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from reconciler.cli.context import GlobalOptions
from reconciler.config import Config, load_config
from reconciler.plan.planner import PlanOptions
from reconciler.plan.safety import Thresholds
from reconciler.spec.loader import LoadedSpecs, load_specs


def load_project(opts: GlobalOptions) -> tuple[Config, LoadedSpecs]:
    """Load reconcile.yaml and every spec (SpecError on bad input); print the specs' notices."""
    config = load_config(opts.config_path)
    specs = load_specs(config)
    for notice in specs.notices:
        click.echo(f"note: {notice}", err=True)
    return config, specs


def plan_options(config: Config, *, targets: tuple[str, ...], allow_delete: bool, force: bool,
                 cancel_pending: bool) -> PlanOptions:
    """Planner options from the consent flags and the configured mass-change thresholds."""
    return PlanOptions(targets=targets, allow_delete=allow_delete, force=force, cancel_pending=cancel_pending,
                       thresholds=Thresholds.from_config(config.safety),
                       now=datetime.now(UTC).isoformat(timespec="seconds"))
