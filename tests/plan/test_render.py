"""The three renderings against golden files (colour off), plus escaping and colour rules.

Regenerate the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest tests/plan``
and review the diff like any other code change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.plan.model import Action, FieldChange, Plan, Unmanaged
from reconciler.plan.render import MARKDOWN_MARKER, render

from .samples import sample_plan

GOLDEN = Path(__file__).parent / "golden"


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"golden file {path} missing: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("fmt", "golden"), [("text", "plan.txt"), ("markdown", "plan.md"), ("json", "plan.json")])
def test_rendering_matches_golden_file(fmt: str, golden: str) -> None:
    _check_golden(golden, render(sample_plan(), fmt))  # type: ignore[arg-type]


def test_no_changes_renders_short(tmp_path: Path) -> None:
    empty = Plan(state_lineage="l", state_serial=1, unchanged=("a", "b"))
    _check_golden("empty.txt", render(empty, "text"))
    assert "No changes" in render(empty, "markdown")


def test_text_summary_line_is_exact() -> None:
    text = render(sample_plan(), "text")
    assert text.rstrip().splitlines()[-1] == ("Plan: 1 to create, 1 to move, 1 to replace, 2 to update, "
                                              "2 to delete, 1 to continue, 1 blocked.")
    assert "! no spec covers old.example.com: this delete takes it off the network" in text


def test_a_plan_with_only_blocked_actions_says_what_is_blocked_first() -> None:
    blocked = (
        Action(name="old", kind="delete", reason="removed-from-specs", summary="enrollment 5 is no longer in the specs",
               blocked="deletes are off by default", remedy="pass --allow-delete"),
        Action(name="www", kind="update", reason="immutable-field", summary="enrollment 6: common_name",
               changes=(FieldChange(path="common_name", old="a.example.com", new="b.example.com",
                                    field_class="immutable"),),
               blocked="common_name cannot change", remedy="give the spec a new name"),
    )
    plan = Plan(state_lineage="l", state_serial=1, blocked=blocked)
    text = render(plan, "text")
    assert "No changes" not in text and "matches the specs" not in text
    lines = text.splitlines()
    assert lines[0] == "Nothing will be applied: 2 blocked actions need a decision:"
    assert lines[1] == "  ! old: delete (removed-from-specs): deletes are off by default"
    assert text.count("to allow:") == 2  # listed once, not again under a second heading
    assert lines[-1] == "Plan: 0 to create, 0 to update, 0 to delete, 0 to continue, 2 blocked."
    md = render(plan, "markdown")
    assert "No changes" not in md and "**Plan: 0 to create, 0 to update, 0 to delete, 0 to continue, 2 blocked.**" in md
    assert "Nothing will be applied: the blocked actions below need a decision." in md


def test_text_colour_only_when_asked() -> None:
    assert "\x1b[" not in render(sample_plan(), "text", color=False)
    coloured = render(sample_plan(), "text", color=True)
    assert "\x1b[32m+\x1b[0m" in coloured and "\x1b[31m-\x1b[0m" in coloured
    assert "\x1b[" not in render(sample_plan(), "markdown", color=True)


def test_markdown_has_marker_summary_first_and_danger_banner() -> None:
    md = render(sample_plan(), "markdown")
    lines = md.splitlines()
    assert lines[0] == MARKDOWN_MARKER
    assert lines[1] == ("**Plan: 1 to create, 1 to move, 1 to replace, 2 to update, 2 to delete, 1 to continue, "
                        "1 blocked.**")
    assert "> [!CAUTION]" in md and "1 action is blocked" in md
    assert "deletes 2 enrollments**: old (after www), legacy@10007 (after legacy)." in md
    assert "> Deleting old takes **old.example.com** off the network: no spec covers it." in md
    assert md.count("<details>") == md.count("</details>") == 9  # one per change + unmanaged


def test_markdown_escapes_hostile_values() -> None:
    evil = "a|b<script>`x`&"
    plan = Plan(state_lineage="l", state_serial=1, actions=(
        Action(name="n", kind="update", reason="spec-changed", summary=evil,
               changes=(FieldChange(path="csr.organization", old=evil, new="ok", field_class="certificate"),)),))
    md = render(plan, "markdown")
    assert "<script>" not in md and "a|b" not in md and "`x`" not in md
    assert "a&#124;b&lt;script&gt;&#96;x&#96;&amp;" in md


def test_json_is_versioned_stable_and_round_trips() -> None:
    plan = sample_plan()
    text = render(plan, "json")
    data = json.loads(text)
    assert data["format_version"] == 1 and data["summary"]["line"].startswith("Plan: 1 to create")
    assert data["summary"]["has_changes"] is True
    assert render(plan, "json") == text
    assert Plan.from_data(data) == plan
    assert Plan.from_data(data).checksum() == plan.checksum()


def test_text_lists_at_most_twenty_unmanaged_enrollments() -> None:
    many = tuple(Unmanaged(enrollment_id=i, common_name=f"e{i}.example.com", contract_id="c") for i in range(25))
    text = render(Plan(state_lineage="l", state_serial=1, unmanaged=many), "text")
    assert "e19.example.com" in text and "e20.example.com" not in text and "and 5 more" in text


def test_an_in_progress_delete_without_a_change_renders() -> None:
    plan = Plan(state_lineage="l", state_serial=1, actions=(
        Action(name="old", kind="in-progress", reason="deleting", summary="CPS is removing enrollment 9",
               enrollment_id=9, steps=("wait until it is gone", "remove state entry")),))
    assert "… old: CPS is removing enrollment 9" in render(plan, "text")
    assert "| old | CPS is removing enrollment 9 |" in render(plan, "markdown")
