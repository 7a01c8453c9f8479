"""`reconcile status`: the estate at a glance (pending changes, expiry, renewal, drift); a daily CI check."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from reconciler.cli import exit_codes
from reconciler.cli.context import GlobalOptions
from reconciler.cli.project import revision_of, uploaded_certificates
from reconciler.cli.wiring import open_client
from reconciler.config import Config, load_config
from reconciler.observe.status import DEFAULT_THRESHOLD_DAYS, StatusReport, collect_status, expiring
from reconciler.observe.status_html import render_html
from reconciler.observe.status_render import FORMATS, expired_lines, render_status
from reconciler.spec.loader import LoadedSpecs, load_specs
from reconciler.state.backends import open_store
from reconciler.state.files import atomic_write, make_dirs
from reconciler.state.model import State


async def _collect(opts: GlobalOptions, config: Config, specs: LoadedSpecs, state: State) -> StatusReport:
    async with open_client(opts, config) as client:
        return await collect_status(specs, state, client, revision=revision_of(config))


def _write(path: Path, text: str) -> None:
    make_dirs(path.parent)
    atomic_write(path, text.encode("utf-8"))


@click.command("status")
@click.option("--format", "fmt", type=click.Choice((*FORMATS, "html")), default="text", show_default=True,
              help="text for people, markdown for issues and pull requests, json for tools, html for a "
                   "self-contained timeline page (inline CSS and SVG; publish it as a CI artifact).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write the report to FILE (atomically) instead of stdout; e.g. --format html --out status.html.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Also write the html page to FILE, from the same read of CPS (a daily job prints markdown and "
                   "publishes the page without reading CPS twice).")
@click.option("--expiring-within", "within", type=click.IntRange(min=0), default=None, metavar="DAYS",
              help="Exit 1 when a deployed certificate (staging or production) expires in fewer than DAYS days "
                   "(an expired one included).")
@click.option("--threshold", type=click.IntRange(min=0), default=DEFAULT_THRESHOLD_DAYS, show_default=True,
              metavar="DAYS", help="Highlight expiry under this many days (defaults to --expiring-within if given).")
@click.pass_obj
def status(opts: GlobalOptions, fmt: str, out: Path | None, html_out: Path | None, within: int | None,
           threshold: int) -> None:
    """One row per enrollment in specs and/or state: id, type, CN, SANs, pending change and what it
    waits for, staging and production expiry (days left), next renewal, and drift. Reads CPS;
    changes nothing.

    \b
    NEXT RENEWAL says who renews the certificate and when:
      2027-01-10 (cps)         DV: CPS starts its own renewal then (autoRenewalStartTime)
      2027-01-10 (window 30d)  third-party: apply renews from then (renewal.before_expiry)
      due (window 30d)         third-party: inside the window; the next apply renews
      renewing                 a renewal change is open (see PENDING / WAITING FOR)
      none: NOT RENEWING       third-party without renewal.before_expiry: CPS never renews these

    Dates are judged by CPS's clock (the Date of its answers), not this machine's. An expired
    certificate is flagged EXPIRED in every format (an expired production certificate is an
    outage). Exit 0 whatever the estate looks like, unless --expiring-within finds one.
    """
    config = load_config(opts.config_path)
    specs = load_specs(config, uploaded=uploaded_certificates(config))
    state = open_store(config).read()
    report = asyncio.run(_collect(opts, config, specs, state))
    rows, now = report.rows, report.now
    mark = within if within is not None else threshold
    if fmt == "html":
        text = render_html(rows, now=now, threshold=mark)
    else:
        text = render_status(rows, fmt, mark, now=now)
    if out is not None:
        _write(out, text)
        click.echo(f"Wrote the {fmt} status of {len(rows)} enrollment(s) to {out}.", err=True)
    else:
        click.echo(text, nl=False)
    if html_out is not None:
        _write(html_out, text if fmt == "html" else render_html(rows, now=now, threshold=mark))
        click.echo(f"Wrote the html status page to {html_out}.", err=True)
    if out is not None or fmt in ("json", "html"):  # text and markdown on stdout carry the banner already
        for line in expired_lines(rows):
            click.echo(line, err=True)
    if within is not None:
        soon = expiring(rows, within)
        if soon:
            click.echo(f"{len(soon)} enrollment(s) with a certificate expiring within {within} days: "
                       + ", ".join(r.name for r in soon), err=True)
            raise click.exceptions.Exit(exit_codes.ERROR)
