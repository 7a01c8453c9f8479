"""The CI example and the pre-commit hook only use commands and options the CLI really has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from reconciler.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def _invocations(text: str) -> list[list[str]]:
    found = []
    for match in re.finditer(r"reconcile ([a-z-]+(?: [^|>;&\n]*)?)", text):
        words = shlex.split(match.group(1))
        if words and words[0] in cli.commands:  # type: ignore[attr-defined]
            found.append(words)
    return found


def _check(words: list[str]) -> None:
    command = cli.commands[words[0]]  # type: ignore[attr-defined]
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in words[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"reconcile {words[0]} has no option {word}"


def test_workflow_runs_validate_plan_markdown_on_prs_and_applies_a_saved_plan_on_main() -> None:
    text = (ROOT / "examples" / "ci" / "reconcile.yml").read_text()
    workflow = yaml.load(text, Loader=yaml.BaseLoader)  # keeps the `on:` key a string
    assert set(workflow["on"]) >= {"pull_request", "push"}
    plan_steps = " ".join(s.get("run", "") for s in workflow["jobs"]["plan"]["steps"])
    assert "reconcile validate" in plan_steps and "plan --format markdown" in plan_steps
    apply_steps = " ".join(s.get("run", "") for s in workflow["jobs"]["apply"]["steps"])
    assert "plan --out plan.json" in apply_steps and "reconcile apply plan.json" in apply_steps
    calls = _invocations(text)
    assert {c[0] for c in calls} >= {"validate", "plan", "apply", "status"}
    for words in calls:
        _check(words)


def test_pre_commit_hook_runs_validate() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "reconcile-validate")
    assert hook["entry"] == "reconcile validate" and hook["pass_filenames"] is False
    assert re.match(hook["files"], "specs/www.yaml") and re.match(hook["files"], "reconcile.yaml")
    assert not re.match(hook["files"], "README.md")
