"""Removing a SAN: the plan says CPS will ask for SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT and whether the
spec's policy gives it; apply's summary names the code once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.observe.rig import make_repo, run, write_spec
from tests.sandbox.helpers import DEMO_PUBLISH

HOOK = {"publisher": "hook", "hook": {"publish": DEMO_PUBLISH}}
CODE = "SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_repo(tmp_path, monkeypatch)
    write_spec(root, "www", sans=["www.example.com", "old.example.com"], validation=HOOK)
    assert run(root, "apply", "--auto-approve").exit_code == 0
    return root


def test_the_plan_says_the_removal_needs_an_acknowledgement_the_spec_does_not_give(repo: Path) -> None:
    write_spec(repo, "www", sans=["www.example.com"], validation=HOOK)
    plan = run(repo, "plan").stdout
    assert (f"wait for a person to acknowledge the pre-verification warning {CODE} (removing old.example.com): "
            "the spec does not allow it") in plan, plan
    markdown = run(repo, "plan", "--format", "markdown").stdout
    assert f"wait for a person to acknowledge the pre-verification warning {CODE}" in markdown
    apply = run(repo, "apply", "--auto-approve")
    assert apply.exit_code == 3, apply.output
    assert "waiting for acknowledgement of pre-verification warnings" in apply.stdout
    summary = apply.stdout[apply.stdout.index("www: waiting"):]
    detail = next(line for line in summary.splitlines() if CODE in line)
    assert detail.startswith(f"    {CODE}: ") and detail.count(CODE) == 1, detail


def test_the_plan_says_when_the_policy_gives_it(repo: Path) -> None:
    write_spec(repo, "www", sans=["www.example.com"], validation=HOOK, auto_approve_warnings=[CODE])
    plan = run(repo, "plan").stdout
    assert (f"acknowledge the pre-verification warning {CODE} (removing old.example.com; allowed: {CODE} is in "
            "auto_approve_warnings)") in plan, plan
    assert run(repo, "apply", "--auto-approve").exit_code == 0
