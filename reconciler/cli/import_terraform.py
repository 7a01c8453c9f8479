"""`reconcile import --from-terraform FILE`: read the state, migrate, bind, and say what to do next."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from reconciler.cli.context import GlobalOptions
from reconciler.cli.wiring import open_client
from reconciler.config import Config, load_config
from reconciler.observe.importer import bind
from reconciler.observe.tfcps import TfCps, collect
from reconciler.observe.tfimport import CpsSide, TfImportResult, migrate, read_cps, state_rm_commands
from reconciler.observe.tfstate import TfStateError, read_tfstate
from reconciler.state.backends import open_store


async def _read(opts: GlobalOptions, config: Config, tf: TfCps) -> dict[int, CpsSide]:
    async with open_client(opts, config) as client:
        return await read_cps(client, tf)


def import_terraform(opts: GlobalOptions, tfstate: Path, out: Path | None, *, force: bool,
                     factor_defaults: bool) -> TfImportResult | None:
    """Everything is read and checked before the first write; CPS is only read."""
    config = load_config(opts.config_path)
    try:
        text = tfstate.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TfStateError(f"cannot read {tfstate}: {getattr(exc, 'strerror', None) or exc}") from None
    tf = collect(read_tfstate(text, str(tfstate)), str(tfstate))
    for address in tf.unknown:
        click.echo(f"not migrated: {address} (reconcile does not know this resource type)", err=True)
    for orphan in tf.orphans:
        click.echo(f"not migrated: {orphan}", err=True)
    if not tf.enrollments:
        click.echo(f"no akamai_cps_dv_enrollment or akamai_cps_third_party_enrollment in {tfstate}; nothing to do.")
        return None
    store = open_store(config)
    with store.lock("import"):
        cps = asyncio.run(_read(opts, config, tf))
        state = store.read()
        done = migrate(tf, cps, state, config, out or config.specs_dir, force=force, factor_defaults=factor_defaults)
        store.write(bind(state, done.result.config, done.result.imported))
    return done


def report_migrated(done: TfImportResult) -> None:
    """Per migrated enrollment: its spec, whether CPS agrees with Terraform, notes."""
    files = {i.name: i for i in done.result.imported}
    for report in done.reports:
        item = files[report.name]
        click.echo(f"migrated {report.address} (enrollment {report.enrollment_id}) as {report.name}: "
                   f"{done.result.config.relative(item.file)}")
        if report.differs:
            click.echo(f"  CPS differs from the Terraform state in {', '.join(report.differs)}: the spec keeps "
                       "Terraform's values, so the first plan shows this as drift to put back (edit the spec to "
                       "keep CPS's instead)")
        else:
            click.echo("  CPS agrees with the Terraform state")
        if item.certificate_fingerprints:
            keys = ", ".join(k.upper() for k in sorted(item.certificate_fingerprints))
            click.echo(f"  uploaded certificates ({keys}) written to the spec's certificate paths")
        for note in report.notes:
            click.echo(f"  note: {note}")


def report_state_rm(done: TfImportResult) -> None:
    """The last step of the migration, for the user to run after reviewing the plan."""
    if done.state_rm:
        expect = ("it shows the differences above as drift, and nothing else" if any(r.differs for r in done.reports)
                  else "it should show no changes")
        click.echo(f"\nReview `reconcile plan` first ({expect}). Then make Terraform forget these resources (this "
                   "changes nothing in CPS) and delete their blocks from your configuration:")
        for command in state_rm_commands(done.state_rm):
            click.echo(f"  {command}")
