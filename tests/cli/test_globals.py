"""Usage errors exit 1 (2 is "changes present"), and the global options work after the command."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from tests.sandbox.helpers import DEMO_PUBLISH

CONTACT = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1-555-0100"}
ORG = {"name": "Example Inc", "phone": "+1-555-0100", "address_line_one": "1 Main St", "city": "Cambridge",
       "region": "MA", "postal_code": "02142", "country_code": "US"}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    config = {"default_contract": "ctr_1-AB123",
              "defaults": {"admin_contact": CONTACT, "tech_contact": CONTACT, "organization": ORG,
                           "validation": {"publisher": "hook", "hook": {"publish": DEMO_PUBLISH}}}}
    (root / "reconcile.yaml").write_text(yaml.safe_dump(config))
    (root / "specs" / "www.yaml").write_text(yaml.safe_dump({"name": "www", "type": "dv",
                                                              "common_name": "www.example.com"}))
    monkeypatch.chdir(root)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("RECONCILE_SANDBOX_SPEED", "0")
    monkeypatch.setenv("AKAMAI_EDGERC", str(tmp_path / "no-such-edgerc"))
    return root


def run(*args: str, color: bool = False) -> Result:
    return CliRunner().invoke(cli, list(args), color=color)


@pytest.mark.parametrize("args", [
    ["plan", "--bogus"],                      # unknown option of a command
    ["--bogus", "plan"],                      # unknown global option
    ["plan", "--format", "markdwn"],          # bad choice
    ["plan", "--detailed-exitcode", "extra"], # unexpected argument
    ["nosuch"],                               # unknown command
    ["status", "--expiring-within", "-3"],    # out of range
    ["import"],                               # a UsageError raised by the command itself
])
def test_usage_errors_exit_1_not_2(repo: Path, args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert "Error:" in result.output


def test_global_options_after_the_command_mean_the_same(repo: Path) -> None:
    before = run("--sandbox", "plan", "--detailed-exitcode")
    after = run("plan", "--detailed-exitcode", "--sandbox")
    assert before.exit_code == after.exit_code == 2, after.output
    assert "+ www: create (new)" in after.stdout and after.stdout == before.stdout
    # without --sandbox the same command needs the (missing) .edgerc: it is an error, not a plan
    assert run("plan", "--detailed-exitcode").exit_code == 1


def test_no_color_config_and_verbose_after_the_command(repo: Path, tmp_path: Path) -> None:
    assert "\x1b[" in run("plan", "--sandbox", color=True).stdout
    assert "\x1b[" not in run("plan", "--sandbox", "--no-color", color=True).stdout
    other = tmp_path / "elsewhere"
    (other / "specs").mkdir(parents=True)
    (other / "reconcile.yaml").write_text("default_contract: ctr_1-X\n")
    assert "0 specs OK" in run("validate", "--config", str(other / "reconcile.yaml")).stdout
    assert "1 spec OK" in run("validate").stdout
    root = logging.getLogger()
    saved = root.level
    try:
        run("validate", "-v")
        assert root.level == logging.INFO
        run("-v", "validate", "-v")  # counts add up, as -vv
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(saved)


def test_every_command_takes_the_global_options_and_says_so() -> None:
    for name, command in cli.commands.items():  # type: ignore[attr-defined]
        opts = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--sandbox", "--config", "--no-color", "-v", "--edgerc", "--section"} <= opts, name
        assert "may come before or after the command" in (command.epilog or ""), name
