"""`reconcile schema`: JSON Schema of the spec format (or reconcile.yaml) for editors and CI."""

from __future__ import annotations

import json
from pathlib import Path

import click

from reconciler.spec.schema import config_json_schema, spec_json_schema


@click.command("schema")
@click.option("--kind", type=click.Choice(["spec", "config"]), default="spec", show_default=True,
              help="spec: enrollment spec files; config: reconcile.yaml.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of stdout.")
def schema(kind: str, out: Path | None) -> None:
    """Print a JSON Schema for editors (yaml-language-server) and CI.

    \b
    Save it and point your spec files at it with a modeline on their first line:
      reconcile schema > reconcile-spec.schema.json
      # yaml-language-server: $schema=../reconcile-spec.schema.json
    """
    document = spec_json_schema() if kind == "spec" else config_json_schema()
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
