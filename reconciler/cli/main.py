"""The `reconcile` command group: global flags, command registration, error-to-exit-code mapping."""

from __future__ import annotations

import errno
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from reconciler import __version__
from reconciler.cli import exit_codes
from reconciler.cli.context import GlobalOptions
from reconciler.cli.globals import accept_after, configure_logging, group_options
from reconciler.errors import AuthenticationError, CpsApiError, ReconcileError
from reconciler.heap import freeze_startup_heap

log = logging.getLogger("reconciler.cli")

AUTH_HINT = ("hint: the Akamai API gateway refused the request's authentication: check client_token, "
             "client_secret and access_token in the .edgerc section in use (--edgerc/--section, "
             "AKAMAI_EDGERC/AKAMAI_EDGERC_SECTION, or edgerc/edgerc_section in reconcile.yaml), that the "
             "API client may use CPS, and that this machine's clock is right (signatures are timestamped)")


def _hint(exc: ReconcileError) -> str | None:
    """What to check next, for errors whose message alone does not say where to look."""
    gateway_auth = isinstance(exc, CpsApiError) and "/-/pep-authn/" in (exc.problem.type or "")
    if isinstance(exc, AuthenticationError) or gateway_auth:
        return AUTH_HINT
    return None


_WRITE_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def os_error_line(exc: OSError) -> str:
    """``cannot write state/x.json: No space left on device``: the file and the cause, one line."""
    cause = exc.strerror or type(exc).__name__
    if exc.filename is None:
        return cause
    verb = "cannot write " if exc.errno in _WRITE_ERRNOS else ""
    return f"{verb}{exc.filename}: {cause}"


def _usage_error(exc: click.UsageError) -> NoReturn:
    exc.show()  # usage, "Try 'reconcile CMD --help'", and the error, as click shows them
    raise click.exceptions.Exit(exit_codes.ERROR)


class ReconcileGroup(click.Group):
    """Maps the exception tree to exit codes and one-line messages, in one place.

    A usage error (unknown option or command, a bad value) exits 1 like any error, not click's 2:
    2 means "changes present" here, and a CI job must not read a mistyped flag as a plan.
    """

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            _usage_error(exc)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _usage_error(exc)
        except ReconcileError as exc:
            click.echo(f"Error: {exc}", err=True)
            hint = _hint(exc)
            if hint:
                click.echo(hint, err=True)
            sys.exit(exit_codes.ERROR)
        except OSError as exc:
            # A read-only or full disk, a missing permission: the environment, not a bug. One line
            # naming the file and the cause; the traceback only with -vv.
            log.debug("file system error", exc_info=True)
            click.echo(f"Error: {os_error_line(exc)}", err=True)
            sys.exit(exit_codes.ERROR)


@click.group(cls=ReconcileGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconcile")
@group_options
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, edgerc: Path | None, section: str | None,
        account_switch_key: str | None, sandbox: bool, no_color: bool, verbose: int) -> None:
    """GitOps for Akamai CPS certificates.

    Keep enrollments as YAML under specs/, review `reconcile plan`, then
    `reconcile apply` drives every enrollment to a deployed certificate.

    \b
    A day with reconcile:
      reconcile validate                       check specs offline (CI, pre-commit)
      reconcile --sandbox plan                 try it all against the built-in CPS emulator
      reconcile plan -out plan.json            review; the saved plan is what apply runs
      reconcile apply plan.json                make it so, then follow each change to deployed
      reconcile status --expiring-within 30    daily check: exit 1 if a certificate expires soon
      reconcile import --contract C --all      adopt enrollments made elsewhere

    Global options may also come after the command (reconcile plan --sandbox).

    Exit codes: 0 success or no changes, 1 error (a usage error too), 2 changes
    present (plan --detailed-exitcode), 3 apply finished but an enrollment waits
    on a person. See docs/exit-codes.md; each command's --help says more.
    """
    configure_logging(verbose)
    ctx.obj = GlobalOptions(config_path=config_path, edgerc=edgerc, section=section,
                            account_switch_key=account_switch_key, sandbox=sandbox,
                            no_color=no_color, verbose=verbose)


def _register() -> None:
    from reconciler.cli import commands

    for command in commands.ALL:
        accept_after(command)
        cli.add_command(command)


_register()


def main() -> None:
    # The commands' imports are in: full collections walk only what the command makes from here
    # (here, not in ``cli``: an in-process caller such as a test runner keeps its own heap as is).
    freeze_startup_heap()
    cli(prog_name="reconcile")


if __name__ == "__main__":
    main()
