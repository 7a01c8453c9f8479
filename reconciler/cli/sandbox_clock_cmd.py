"""`reconcile sandbox-clock`: show or move the virtual clock of the built-in sandbox (`--sandbox`).

The in-process sandbox has no HTTP admin route (`/_sandbox/advance` belongs to `reconcile
sandbox`, the server); this command moves the clock its data under .reconcile/sandbox/ keeps, and
runs whatever falls due (validations, deployments, CPS's own renewals).
"""

from __future__ import annotations

import click

from reconciler.cli.context import GlobalOptions
from reconciler.cli.wiring import sandbox_dir
from reconciler.config import load_config
from reconciler.quantities import parse_quantity
from reconciler.sandbox.local import open_local_sandbox

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def _seconds(value: str) -> float:
    try:
        seconds = parse_quantity(value, _UNITS, "a duration (90s, 10m, 2h, 60d, 4w; a number is seconds)")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--advance") from None
    assert isinstance(seconds, float)
    return seconds


@click.command("sandbox-clock")
@click.option("--advance", "advance", metavar="DURATION", default=None,
              help="Move the clock forward by DURATION (90s, 10m, 2h, 60d, 4w) and run what falls due.")
@click.pass_obj
def sandbox_clock(opts: GlobalOptions, advance: str | None) -> None:
    """Show (or with --advance move) the time of the built-in sandbox `--sandbox` talks to.

    \b
      reconcile sandbox-clock                  the sandbox's time now
      reconcile sandbox-clock --advance 60d    two months later: renewal windows, CPS's own DV renewals

    For a sandbox run with `reconcile sandbox`, POST /_sandbox/advance instead (docs/sandbox.md).
    """
    config = load_config(opts.config_path)
    sandbox = open_local_sandbox(sandbox_dir(config))
    try:
        if advance is not None:
            sandbox.advance(_seconds(advance))
        click.echo(f"sandbox time: {sandbox.app.runtime.now().isoformat(timespec='seconds')}")
    finally:
        sandbox.close()
