"""A project directory driven through the CLI against the in-process --sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from tests.apply.sandbox_rig import ORG, PERSON

__all__ = ["ORG", "PERSON", "make_repo", "run", "write_spec"]


def make_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECONCILE_SANDBOX_SPEED", "20000")
    monkeypatch.setenv("RECONCILE_POLL_INTERVAL", "0.02")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reconcile.yaml").write_text(yaml.safe_dump({
        "default_contract": "ctr_1-CLI",
        "defaults": {"admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG}}))
    (tmp_path / "specs").mkdir()
    return tmp_path


def write_spec(root: Path, name: str, **fields: Any) -> None:
    data = {"name": name, "type": "dv", "common_name": f"{name}.example.com", **fields}
    (root / "specs" / f"{name}.yaml").write_text(yaml.safe_dump(data))


def run(root: Path, *args: str, sandbox: bool = True) -> Result:
    flags = ["--sandbox"] if sandbox else []
    return CliRunner().invoke(cli, [*flags, "--no-color", "--config", str(root / "reconcile.yaml"), *args],
                              catch_exceptions=False)
