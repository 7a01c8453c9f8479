"""`reconcile validate [PATH...]`: offline check of every spec; errors name file:line:field."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reconciler.cli import exit_codes
from reconciler.cli.context import GlobalOptions
from reconciler.cli.project import uploaded_certificates
from reconciler.config import load_config
from reconciler.errors import SpecIssue
from reconciler.spec.loader import SpecReport, check_specs

_TAGS = {"error": ("", "red"), "warning": ("warning: ", "yellow"), "info": ("note: ", "cyan")}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _line(issue: SpecIssue, color: bool) -> str:
    tag, colour = _TAGS.get(issue.severity, ("", "white"))
    text = f"{tag}{issue}"
    return click.style(text, fg=colour) if color and issue.severity != "error" else text


def summary(report: SpecReport) -> str:
    """E.g. "3 specs OK, 1 waiting for certificate" or "2 errors in 1 file; 1 spec OK"."""
    ok = _plural(len(report.ok), "spec") + " OK"
    parts = [ok]
    if report.waiting:
        parts.append(f"{len(report.waiting)} waiting for certificate")
    warnings = [i for i in report.issues if i.severity == "warning"]
    if warnings:
        parts.append(_plural(len(warnings), "warning"))
    if not report.errors:
        return ", ".join(parts)
    files = {i.file for i in report.errors}
    return f"{_plural(report.error_count, 'error')} in {_plural(len(files), 'file')}; " + ", ".join(parts)


def _as_json(report: SpecReport) -> str:
    return json.dumps({
        "valid": not report.errors,
        "files": report.files,
        "specs": [{"name": s.name, "type": s.spec.type, "file": s.file, "line": s.line,
                   "spec_hash": s.spec_hash, "waiting": list(s.waiting)} for s in report.ok],
        "issues": [{"severity": i.severity, "file": i.file, "line": i.line, "column": i.column, "field": i.field,
                    "message": i.message} for i in report.issues],
        "summary": summary(report),
    }, indent=2)


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people, json for tools.")
@click.pass_obj
def validate(opts: GlobalOptions, paths: tuple[Path, ...], fmt: str) -> None:
    """Check specs offline: render, parse and validate every file, report every problem.

    PATHs are spec files or directories (default: specs_dir from reconcile.yaml). Makes no
    network calls and needs no credentials; the state file is read only to know which
    certificates were uploaded (an expired one of those is a warning). Exit 1 on any error,
    else 0 (notices such as "waiting for certificate" are not errors).
    """
    config = load_config(opts.config_path)
    report = check_specs(config, list(paths) or None, uploaded_certificates(config))
    if fmt == "json":
        click.echo(_as_json(report))
    else:
        for issue in report.issues:
            click.echo(_line(issue, opts.color))
        click.echo(summary(report))
    if report.errors:
        raise click.exceptions.Exit(exit_codes.ERROR)
