"""docs/dv-challenges.md and the CI example say what the code does: settings that load, options
that exist, a workflow that resumes on a committed confirmation."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from reconciler.cli.main import cli
from reconciler.config import Config

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "dv-challenges.md").read_text()


def test_settings_block_is_a_valid_reconcile_yaml_with_the_documented_defaults() -> None:
    block = DOC.split("### Settings", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    config = Config.model_validate({**yaml.safe_load(block), "root": ROOT})
    assert config.dns_check == Config(root=ROOT).dns_check  # the doc shows the defaults
    assert config.http_check == Config(root=ROOT).http_check
    assert (config.dns_check.timeout, config.dns_check.interval, config.http_check.timeout) == (600, 5, 120)


def test_every_challenges_option_in_the_doc_exists() -> None:
    command = cli.commands["challenges"]  # type: ignore[attr-defined]
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    used = set(re.findall(r"reconcile challenges \S+((?: --[a-z-]+)+)", DOC + (ROOT / "README.md").read_text()))
    options = {o for group in used for o in group.split()}
    assert {"--check", "--confirm-published"} <= options
    assert options <= known, options - known


def test_ci_example_applies_when_a_confirmation_is_pushed() -> None:
    workflow = yaml.load((ROOT / "examples" / "ci" / "reconcile.yml").read_text(), Loader=yaml.BaseLoader)
    assert "state/challenges/**" in workflow["on"]["push"]["paths"]
