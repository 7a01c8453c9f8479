"""`reconcile import`: adopt existing enrollments as spec files bound in state (no change in CPS),
read from CPS (``--enrollment-id`` / ``--all``) or from a Terraform state (``--from-terraform``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from reconciler.cli.context import GlobalOptions
from reconciler.cli.import_terraform import import_terraform, report_migrated, report_state_rm
from reconciler.cli.wiring import open_client
from reconciler.config import Config, load_config
from reconciler.cps.models import Enrollment
from reconciler.observe.importer import ImportResult, bind, fetch, write_specs
from reconciler.state.backends import open_store
from reconciler.state.gitmerge import write_gitignore
from reconciler.state.layout import Layout


async def _fetch(opts: GlobalOptions, config: Config, contract: str, ids: list[int] | None) -> list[Enrollment]:
    async with open_client(opts, config) as client:
        return await fetch(client, contract, ids)


@click.command("import")
@click.option("--contract", default=None, help="Contract to import from (default: default_contract).")
@click.option("--enrollment-id", "ids", type=int, multiple=True, help="Import this enrollment (repeatable).")
@click.option("--all", "import_all", is_flag=True, help="Import every enrollment of the contract not yet managed.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the spec files (default: the specs directory).")
@click.option("--factor-defaults", is_flag=True,
              help="Move values all imported enrollments share into reconcile.yaml defaults (needs two or more).")
@click.option("--from-terraform", "tfstate", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Migrate the akamai_cps_* resources of this terraform.tfstate or `terraform show -json` output.")
@click.option("--force", is_flag=True,
              help="With --from-terraform: where a spec name is taken, use NAME-<enrollment id> instead of refusing.")
@click.pass_obj
def import_(opts: GlobalOptions, contract: str | None, ids: tuple[int, ...], import_all: bool,
            out: Path | None, factor_defaults: bool, tfstate: Path | None, force: bool) -> None:
    """Write one spec per existing enrollment and bind it in state; the next plan is empty.

    Names come from the common name (collisions get the enrollment id appended; no file is
    overwritten). Enrollments already in state, or already described by an unbound spec, are
    skipped. Nothing is changed in CPS.

    \b
    From Terraform (docs/migrate-from-terraform.md):
      terraform show -json > tf.json      # or: terraform state pull > tf.json
      reconcile import --from-terraform tf.json
      reconcile plan --detailed-exitcode  # exit 0: nothing to change
      terraform state rm ...              # the commands import printed

    Each akamai_cps_dv_enrollment / akamai_cps_third_party_enrollment (root or module, count or
    for_each) becomes a spec named after its address, with its dv_validation or
    upload_certificate settings; uploaded PEMs are written to the certificate paths.
    """
    if tfstate is not None:
        if ids or import_all or contract:
            raise click.UsageError("--from-terraform takes the enrollments and contracts from the Terraform state; "
                                   "leave out --enrollment-id, --all and --contract")
        done = import_terraform(opts, tfstate, out, force=force, factor_defaults=factor_defaults)
        if done is not None:
            report_migrated(done)
            _report(done.result, "migrated")
            report_state_rm(done)
        return
    if force:
        raise click.UsageError("--force only applies to --from-terraform")
    if bool(ids) == import_all:
        raise click.UsageError("give --enrollment-id N (repeatable) or --all, not both")
    config = load_config(opts.config_path)
    contract_id = contract or config.default_contract
    if not contract_id:
        raise click.UsageError("no --contract and no default_contract in reconcile.yaml")
    store = open_store(config)
    with store.lock("import"):
        enrollments = asyncio.run(_fetch(opts, config, contract_id, None if import_all else list(ids)))
        state = store.read()
        result = write_specs(enrollments, state, config, contract_id, out or config.specs_dir,
                             factor_defaults=factor_defaults)
        store.write(bind(state, result.config, result.imported))
    for item in result.imported:
        click.echo(f"imported {item.common_name} (enrollment {item.enrollment_id}) as {item.name}: {item.file}")
    _report(result, "imported")


def _report(result: ImportResult, verb: str) -> None:
    for skip in result.skipped:
        click.echo(f"skipped enrollment {skip.enrollment_id} ({skip.common_name}): {skip.reason}", err=True)
    if result.factored:
        where = result.config.relative(result.config.file) if result.config.file else "reconcile.yaml"
        click.echo(f"factored into {where}: {_summary(result.factored)}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{len(result.imported)} {verb}, {len(result.skipped)} skipped.")
    if result.config.state.backend == "file":  # the postgres backend leaves no working files in the repository
        _gitignore(result.config)


def _gitignore(config: Config) -> None:
    path, missing = write_gitignore(config.root, Layout(config.state_path))
    if missing:
        click.echo(f"note: {path} does not ignore the state's working files; add: {' '.join(missing)}", err=True)


def _summary(paths: list[str]) -> str:
    """``admin_contact (5 fields), geography`` from dotted paths."""
    groups: dict[str, int] = {}
    for path in paths:
        head = path.split(".")[0]
        groups[head] = groups.get(head, 0) + 1
    return ", ".join(k if n == 1 and k in paths else f"{k} ({n} field{'s' * (n > 1)})" for k, n in groups.items())
