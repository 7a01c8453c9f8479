"""The global options (``--config``, ``--sandbox``, ``-v`` ...): declared once, accepted before the
command (``reconcile --sandbox plan``) and after it (``reconcile plan --sandbox``).

The group reads them into :class:`GlobalOptions` (``ctx.obj``). Every command also carries hidden
copies; a copy given on the command line overrides what the group read (``-v`` adds up), so both
spellings mean the same. Environment variables are read once, by the group's options.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from reconciler.cli.context import GlobalOptions

F = TypeVar("F", bound=Callable[..., Any])

# (declarations, settings): the one definition of each global option.
_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--config", "config_path"), {"type": click.Path(path_type=Path), "default": None,
                                   "help": "Path to reconcile.yaml (default: the nearest reconcile.yaml in "
                                           "this directory or a parent)."}),
    (("--edgerc",), {"type": click.Path(path_type=Path), "envvar": "AKAMAI_EDGERC", "default": None,
                     "help": "EdgeGrid credentials file (env AKAMAI_EDGERC; default ~/.edgerc)."}),
    (("--section",), {"envvar": "AKAMAI_EDGERC_SECTION", "default": None,
                      "help": "Section of the .edgerc file (env AKAMAI_EDGERC_SECTION; default 'default')."}),
    (("--account-switch-key",), {"default": None,
                                 "help": "Act on another account (sent as the accountSwitchKey query parameter)."}),
    (("--sandbox",), {"is_flag": True, "default": False,
                      "help": "Talk to the built-in CPS emulator (data kept under .reconcile/sandbox/) "
                              "instead of Akamai."}),
    (("--no-color",), {"is_flag": True, "default": False, "help": "No colours (also when NO_COLOR is set)."}),
    (("-v", "--verbose"), {"count": True, "help": "More log output on stderr (-vv for debug)."}),
)

NAMES = tuple(next(d for d in decls if d.startswith("--")) for decls, _ in _OPTIONS)
"""The long spelling of every global option, for help texts."""

EPILOG = ("Global options (" + ", ".join(NAMES) + ") may come before or after the command; "
          "see `reconcile --help`.")


def configure_logging(verbose: int) -> None:
    """Log to stderr at WARNING, INFO (-v) or DEBUG (-vv)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)


def group_options(f: F) -> F:
    """Decorate the ``reconcile`` group with every global option."""
    for decls, settings in reversed(_OPTIONS):
        f = click.option(*decls, **settings)(f)
    return f


def _given_late(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if param.name is None or ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
        return value
    opts = ctx.find_object(GlobalOptions)
    if opts is None:  # the command was invoked on its own, outside the group
        return value
    if param.name == "verbose":
        opts.verbose += value
        configure_logging(opts.verbose)
    else:
        setattr(opts, param.name, value)
    return value


def accept_after(command: click.Command) -> None:
    """Give ``command`` (and, for a group, its commands) hidden copies of the global options."""
    taken = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for decls, settings in _OPTIONS:
        if taken & set(decls):
            continue  # the command has its own option of that name: it wins
        copy = {k: v for k, v in settings.items() if k != "envvar"}
        command.params.append(click.Option(list(decls), expose_value=False, hidden=True,
                                           callback=_given_late, **copy))
    if EPILOG not in (command.epilog or ""):
        command.epilog = f"{command.epilog}\n\n{EPILOG}" if command.epilog else EPILOG
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_after(sub)
