"""Saved plans: checksum, refusal of edited/foreign files, and the per-enrollment freshness check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.plan.inputs import Observed, ObservedChange, ObservedEnrollment
from reconciler.plan.model import Action, LiveFacts, Plan
from reconciler.plan.saved import check_fresh, load_saved_plan, save_plan
from reconciler.state.model import State

from .samples import sample_plan


def _obs(eid: int, fp: str, change: ObservedChange | None = None) -> ObservedEnrollment:
    return ObservedEnrollment(enrollment_id=eid, contract_id="c", common_name="x.example.com", view={},
                              fingerprint=fp, changes=(change,) if change else ())


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    plan = sample_plan()
    path = tmp_path / "out" / "plan.json"
    checksum = save_plan(plan, path)
    data = json.loads(path.read_text())
    assert data["checksum"] == checksum and checksum.startswith("sha256:")
    assert data["kind"] == "cps-reconciler-plan" and data["state_serial"] == 12
    assert load_saved_plan(path) == plan


def test_edited_plan_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(sample_plan(), path)
    data = json.loads(path.read_text())
    data["settings"]["allow_delete"] = True
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="modified"):
        load_saved_plan(path)


@pytest.mark.parametrize("content", ["not json", json.dumps({"format_version": 1}),
                                     json.dumps({"kind": "cps-reconciler-plan", "format_version": 2})])
def test_foreign_or_future_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(StateError):
        load_saved_plan(path)


def _plan(*actions: Action, refreshed: bool = True) -> Plan:
    return Plan(state_lineage="L", state_serial=3, actions=actions, refreshed=refreshed)


UPDATE = Action(name="api", kind="update", reason="spec-changed", summary="", enrollment_id=1, spec_hash="h",
                facts=LiveFacts(enrollment_id=1, enrollment_hash="fp1"))
CREATE = Action(name="www", kind="create", reason="new", summary="", spec_hash="w", facts=LiveFacts())


def test_fresh_plan_passes() -> None:
    plan = _plan(UPDATE, CREATE)
    assert check_fresh(plan, State(lineage="L", serial=3), Observed(bound={"api": _obs(1, "fp1")}),
                       {"api": "h", "www": "w"}) == []


def test_state_lineage_and_serial_are_checked() -> None:
    plan = _plan(UPDATE)
    obs = Observed(bound={"api": _obs(1, "fp1")})
    assert "lineage" in check_fresh(plan, State(lineage="other", serial=3), obs)[0]
    assert "another apply ran" in check_fresh(plan, State(lineage="L", serial=4), obs)[0]


def test_enrollment_changed_in_cps_makes_the_plan_stale() -> None:
    reasons = check_fresh(_plan(UPDATE), State(lineage="L", serial=3), Observed(bound={"api": _obs(1, "fp2")}))
    assert reasons == ["api: enrollment 1 changed in CPS since the plan was made"]


def test_pending_change_moving_on_makes_the_plan_stale() -> None:
    cont = Action(name="api", kind="continue", reason="awaiting-input", summary="", enrollment_id=1,
                  facts=LiveFacts(enrollment_id=1, enrollment_hash="fp1", change_id=7,
                                  change_status="coodinate-domain-validation"))
    moved = ObservedChange(change_id=7, status="wait-review-cert-warning", state="awaiting-input")
    reasons = check_fresh(_plan(cont), State(lineage="L", serial=3),
                          Observed(bound={"api": _obs(1, "fp1", moved)}))
    assert len(reasons) == 1 and "pending change moved" in reasons[0]


def test_gone_enrollment_and_new_same_cn_enrollment_make_the_plan_stale() -> None:
    s = State(lineage="L", serial=3)
    assert "gone" in check_fresh(_plan(UPDATE), s, Observed())[0]
    appeared = Observed(candidates={"www": (_obs(5, "fp5"),)})
    assert "CN changed" in check_fresh(_plan(CREATE), s, appeared)[0]


def test_spec_edits_after_planning_make_the_plan_stale() -> None:
    s, obs = State(lineage="L", serial=3), Observed(bound={"api": _obs(1, "fp1")})
    assert check_fresh(_plan(UPDATE), s, obs, {"api": "h2"}) == ["api: spec changed since the plan was made"]
    assert check_fresh(_plan(UPDATE), s, obs, {}) == ["api: spec removed since the plan was made"]


def test_unrefreshed_plan_checks_state_only() -> None:
    assert check_fresh(_plan(UPDATE, refreshed=False), State(lineage="L", serial=3), Observed()) == []


def test_plan_made_before_any_state_file_stays_fresh_while_none_is_written() -> None:
    plan = Plan(state_lineage="random-a", state_serial=0)
    assert check_fresh(plan, State(lineage="random-b", serial=0), Observed()) == []
    assert "serial" in check_fresh(plan, State(lineage="random-b", serial=1), Observed())[0]


def test_adopt_and_create_facts_are_rechecked() -> None:
    s = State(lineage="L", serial=3)
    adopt = Action(name="www", kind="adopt", reason="adopt-existing", summary="", enrollment_id=5,
                   facts=LiveFacts(enrollment_id=5, enrollment_hash="fp5"))
    assert check_fresh(_plan(adopt), s, Observed(candidates={"www": (_obs(5, "fp5"),)})) == []
    assert "changed in CPS" in check_fresh(_plan(adopt), s, Observed(candidates={"www": (_obs(5, "x"),)}))[0]
    assert "gone" in check_fresh(_plan(adopt), s, Observed())[0]
    bound_now = check_fresh(_plan(CREATE), s, Observed(bound={"www": _obs(9, "fp9")}))
    assert bound_now == ["www: enrollment 9 is now bound in state"]


def test_waiting_actions_are_not_rechecked() -> None:
    waiting = Action(name="api", kind="in-progress", reason="waiting-on-cps", summary="", enrollment_id=1,
                     facts=LiveFacts(enrollment_id=1, enrollment_hash="fp1", change_id=7, change_status="deploy"))
    assert check_fresh(_plan(waiting), State(lineage="L", serial=3), Observed()) == []


def test_plan_file_with_bad_fields_is_refused(tmp_path: Path) -> None:
    from reconciler.plan.model import data_checksum

    data = {"kind": "cps-reconciler-plan", "format_version": 1, "state_lineage": "L", "state_serial": "x"}
    data["checksum"] = data_checksum(data)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="malformed"):
        load_saved_plan(path)
