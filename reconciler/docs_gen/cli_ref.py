"""The command reference, walked from the click definitions of ``reconciler.cli.main.cli``.

Every visible command (and each subcommand of a group), in the order ``--help`` lists them: its
usage line, its help text, its arguments and a table of its options (type, default, environment
variable, help). Hidden options (the global options every command also accepts after its name)
are listed once, under ``reconcile``.
"""

from __future__ import annotations

import inspect
from typing import Any

import click

from reconciler.docs_gen.tables import cell, prose


def _help_blocks(text: str) -> list[str]:
    r"""Click help text as Markdown: ``\b`` paragraphs (kept as written) become text blocks."""
    lines: list[str] = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b"):
            body = paragraph.removeprefix("\b").strip("\n")
            lines += ["```text", body, "```", ""]
        elif paragraph.strip():
            lines += [prose(paragraph), ""]
    return lines


def _default(param: click.Parameter) -> str:
    value: Any = param.default
    if callable(value) or value is None or value is False or value == () or type(value).__name__ == "Sentinel":
        return ""
    if isinstance(param, click.Option) and param.is_flag and not param.secondary_opts:
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | tuple):
        return cell(" ".join(f"`{v}`" for v in value))
    return cell(f"`{value}`")


def _type(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    kind = param.type
    if isinstance(kind, click.Choice):
        return " \\| ".join(f"`{choice}`" for choice in kind.choices)
    name = kind.name.upper() if kind.name else "TEXT"
    if isinstance(kind, click.IntRange | click.FloatRange):
        name = kind._describe_range().replace("x", name.split()[0]) if hasattr(kind, "_describe_range") else name
    return cell(name)


def _option_row(option: click.Option) -> str:
    names = ", ".join(f"`{o}`" for o in [*option.opts, *option.secondary_opts])
    notes = []
    if option.multiple and "repeatable" not in (option.help or ""):
        notes.append("repeatable")
    if option.required:
        notes.append("required")
    envvar = option.envvar if isinstance(option.envvar, str) else ", ".join(option.envvar or ())
    help_text = cell(option.help or "")
    if notes:
        help_text = f"({', '.join(notes)}) {help_text}".strip()
    return f"| {names} | {_type(option)} | {_default(option)} | {f'`{envvar}`' if envvar else ''} | {help_text} |"


def _options_table(options: list[click.Option]) -> list[str]:
    if not options:
        return []
    return ["| option | type | default | env | description |", "|---|---|---|---|---|",
            *(_option_row(o) for o in options), ""]


def _arguments(command: click.Command) -> list[str]:
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if not arguments:
        return []
    lines = ["Arguments:", ""]
    for argument in arguments:
        many = " (one or more)" if argument.nargs == -1 and argument.required else (
            " (any number)" if argument.nargs == -1 else "")
        optional = "" if argument.required else " (optional)"
        lines.append(f"- `{argument.make_metavar(click.Context(command))}`{many or optional}")
    return [*lines, ""]


def _visible(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is not None and not command.hidden:
            found.append((name, command))
    return found


def _command(path: str, command: click.Command, parent: click.Context) -> list[str]:
    ctx = click.Context(command, info_name=path.rsplit(" ", 1)[-1], parent=parent)
    lines = [f"## {path}", "", "```text", " ".join(command.collect_usage_pieces(ctx)).join(
        [f"{path} ", ""]).rstrip(), "```", ""]
    lines += _help_blocks(command.help or "")
    lines += _arguments(command)
    lines += _options_table([p for p in command.params if isinstance(p, click.Option) and not p.hidden])
    if isinstance(command, click.Group):
        for name, sub in _visible(command, ctx):
            lines += _command(f"{path} {name}", sub, ctx)
    return lines


def render(cli: click.Group) -> str:
    root = click.Context(cli, info_name="reconcile")
    commands = _visible(cli, root)
    lines = ["# Commands", "",
             "Generated from the click definitions by `python -m reconciler.docs_gen`; do not edit. "
             "Each command's `--help` says the same.", "",
             "| command | does |", "|---|---|",
             *(f"| [`reconcile {n}`](#reconcile-{n}) | {cell(c.get_short_help_str(limit=200))} |" for n, c in commands),
             "", "## reconcile", ""]
    lines += _help_blocks(cli.help or "")
    lines += ["Global options (before or after the command):", ""]
    lines += _options_table([p for p in cli.params if isinstance(p, click.Option) and not p.hidden])
    for name, command in commands:
        lines += _command(f"reconcile {name}", command, root)
    return "\n".join(lines).rstrip() + "\n"
