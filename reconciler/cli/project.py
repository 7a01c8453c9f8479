"""What plan and apply both start from: the config, the loaded specs (notices on stderr) and the
planning options built from flags and reconcile.yaml's safety settings."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from reconciler.cli.context import GlobalOptions
from reconciler.config import Config, load_config
from reconciler.errors import ReconcileError
from reconciler.plan.inputs import Revision
from reconciler.plan.planner import PlanOptions
from reconciler.plan.safety import Thresholds
from reconciler.revision import read_revision
from reconciler.spec.loader import LoadedSpecs, Uploaded, load_specs
from reconciler.state.backends import open_store


def uploaded_certificates(config: Config) -> Uploaded:
    """Fingerprints of the certificates state records as uploaded, by spec name, so that an expired
    file that is one of them is a warning rather than an error. A missing or unreadable state
    file gives none here; reading it for real later says what is wrong with it."""
    try:
        state = open_store(config).read()
    except (ReconcileError, OSError):
        return {}
    return {name: frozenset(entry.certificate_fingerprints.values()) for name, entry in state.entries.items()}


def load_project(opts: GlobalOptions) -> tuple[Config, LoadedSpecs]:
    """Load reconcile.yaml and every spec (SpecError on bad input); print the specs' notices."""
    config = load_config(opts.config_path)
    specs = load_specs(config, uploaded=uploaded_certificates(config))
    for notice in specs.notices:
        click.echo(f"note: {notice}", err=True)
    return config, specs


def revision_of(config: Config) -> Revision:
    """The checkout's commit and which commits recorded in state it contains (see
    ``reconciler.revision``); an unreadable state file asks about none (reading it for real later
    says what is wrong with it)."""
    try:
        state = open_store(config).read()
    except (ReconcileError, OSError):
        return read_revision(config.root, ())
    return read_revision(config.root, (e.applied_commit for e in state.entries.values()))


def plan_options(config: Config, *, targets: tuple[str, ...], allow_delete: bool, force: bool,
                 cancel_pending: bool, create_duplicates: tuple[str, ...] = ()) -> PlanOptions:
    """Planner options from the consent flags, the configured mass-change thresholds and the
    checkout's revision."""
    return PlanOptions(targets=targets, allow_delete=allow_delete, force=force, cancel_pending=cancel_pending,
                       create_duplicates=create_duplicates, revision=revision_of(config),
                       thresholds=Thresholds.from_config(config.safety),
                       now=datetime.now(UTC).isoformat(timespec="seconds"))
