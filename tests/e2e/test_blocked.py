"""Blocked actions, end to end: what plan says first, the one exit-code rule of apply, and status
agreeing with plan (README "Status": they never disagree)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.state.store import StateStore
from tests.observe.rig import make_repo, run, write_spec
from tests.sandbox.helpers import DEMO_PUBLISH

HOOK = {"publisher": "hook", "hook": {"publish": DEMO_PUBLISH}}


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = make_repo(tmp_path, monkeypatch)
    write_spec(repo, "www", validation=HOOK)
    write_spec(repo, "old", validation=HOOK)
    assert run(repo, "apply", "--auto-approve").exit_code == 0
    return repo


def _status(repo: Path) -> dict[str, str]:
    result = run(repo, "status", "--format", "json")
    assert result.exit_code == 0, result.output
    return {r["name"]: r["drift"] for r in json.loads(result.stdout)["enrollments"]}


def test_a_removed_spec_is_blocked_in_plan_status_and_apply_alike(applied: Path) -> None:
    (applied / "specs" / "old.yaml").unlink()
    plan = run(applied, "plan", "--detailed-exitcode")
    assert plan.exit_code == 2
    first = plan.stdout.splitlines()[0]
    assert first == "Nothing will be applied: 1 blocked action needs a decision:", plan.stdout
    assert "No changes" not in plan.stdout
    assert _status(applied) == {"old": "blocked: delete", "www": "none"}
    text = run(applied, "status").stdout
    assert any(line.startswith("old ") and line.rstrip().endswith("blocked: delete") for line in text.splitlines())
    apply = run(applied, "apply", "--auto-approve")
    assert apply.exit_code == 1, apply.output
    assert "old: not applied (delete) - deletes are off by default" in apply.stdout
    assert apply.stdout.rstrip().splitlines()[-1] == "Apply complete: 1 blocked (not applied)."


def test_a_common_name_change_replaces_and_the_old_half_is_blocked_like_a_delete(applied: Path) -> None:
    old_id = StateStore(applied / "state" / "reconcile-state.json").read().entries["www"].enrollment_id
    write_spec(applied, "www", common_name="www2.example.com", validation=HOOK)
    plan = run(applied, "plan")
    assert "+/- www: replace (immutable-field)" in plan.stdout
    assert f"! www@{old_id}: delete (replaced): deletes are off by default" in plan.stdout
    apply = run(applied, "apply", "--auto-approve")
    assert apply.exit_code == 1, apply.output  # the new one is made; deleting the old one needs consent
    assert f"www@{old_id}: not applied (delete) - deletes are off by default" in apply.stdout
    assert _status(applied)[f"www@{old_id}"] == "blocked: delete"
