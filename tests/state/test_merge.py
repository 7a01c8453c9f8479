"""The three-way merge of one entry (``reconciler/state/merge.py``), rule by rule of its table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.state import ChangeInFlight, Intent, StateEntry
from reconciler.state.merge import merge_entries, merge_entry

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _e(revision: int = 1, minutes: int = 0, **fields: object) -> StateEntry:
    data: dict[str, object] = {"enrollment_id": 10001, "contract_id": "ctr_1-AB123", "common_name": "www.example.com",
                               "revision": revision, "updated_at": T0 + timedelta(minutes=minutes)}
    return StateEntry.model_validate({**data, **fields})


def _change(cid: int, status: str = "wait", minutes: int = 0) -> ChangeInFlight:
    return ChangeInFlight(change_id=cid, status=status, updated_at=T0 + timedelta(minutes=minutes))


def test_one_side_changed_takes_that_side_and_removal_too() -> None:
    base = _e()
    changed = _e(2, 5, spec_hash="h2")
    assert merge_entry("www", base, base, changed) == (changed, [])
    assert merge_entry("www", base, None, base) == (None, [])


def test_removed_on_one_side_and_only_refreshed_on_the_other_is_removed() -> None:
    base = _e()
    refreshed = _e(2, 5, last_refresh=T0)
    assert merge_entry("www", base, None, refreshed) == (None, [])


def test_removed_on_one_side_and_changed_on_the_other_is_refused() -> None:
    _merged, problems = merge_entry("www", _e(), _e(2, 5, spec_hash="h2"), None)
    assert problems and "removed on one side and changed here" in problems[0] and "state rm www" in problems[0]


def test_two_enrollment_ids_for_one_name_are_refused() -> None:
    _merged, problems = merge_entry("www", _e(), _e(2, 1, enrollment_id=2), _e(2, 2, enrollment_id=3))
    assert problems == ["www: enrollment_id is 2 here and 3 on the other side: two different enrollments claim "
                        "this name; keep one (`reconcile state mv`/`rm`), then merge again"]


def test_added_on_both_sides_one_still_creating_takes_the_created_id() -> None:
    intent = Intent(op="creating", common_name="www.example.com", contract_id="ctr_1-AB123", at=T0)
    creating = _e(2, 1, enrollment_id=None, intent=intent.model_dump())
    created = _e(3, 2, change=_change(7).model_dump())
    merged, problems = merge_entry("www", None, creating, created)
    assert problems == [] and merged is not None
    assert merged.enrollment_id == 10001
    assert merged.intent == intent  # an intent is kept: the next run looks before it acts


def test_both_changed_fields_take_the_newer_fact_and_history_moves_past_both() -> None:
    base = _e(1, 0, spec_hash="h1", change=_change(5).model_dump())
    ours = _e(4, 10, spec_hash="ours", change=_change(5, "done", 10).model_dump(), prevent_destroy=True,
              last_refresh=T0 + timedelta(minutes=10), certificate_fingerprints={"rsa": "aa"})
    theirs = _e(6, 20, spec_hash="theirs", change=_change(9, minutes=1).model_dump(),
                last_refresh=T0 + timedelta(minutes=3), certificate_fingerprints={"rsa": "bb"})
    merged, problems = merge_entry("www", base, ours, theirs)
    assert problems == [] and merged is not None
    assert merged.change is not None and merged.change.change_id == 9  # the higher change id
    assert merged.spec_hash == "theirs" and merged.certificate_fingerprints == {"rsa": "bb"}  # written last
    assert merged.prevent_destroy is True  # only ours changed it
    assert merged.last_refresh == T0 + timedelta(minutes=10)
    assert merged.revision == 7 and merged.updated_at == T0 + timedelta(minutes=20)


def test_same_change_id_takes_the_later_sighting() -> None:
    base = _e(1, 0, change=_change(5).model_dump())
    ours = _e(2, 9, change=_change(5, "deployed", 9).model_dump())
    theirs = _e(2, 8, change=_change(5, "verifying", 8).model_dump())
    merged, _ = merge_entry("www", base, ours, theirs)
    assert merged is not None and merged.change is not None and merged.change.status == "deployed"


def test_merge_entries_lists_every_contradiction() -> None:
    result = merge_entries({"a": _e(), "b": _e()},
                           {"a": _e(2, 1, enrollment_id=2), "b": _e(2, 1, spec_hash="x")},
                           {"a": _e(2, 1, enrollment_id=3)})
    assert len(result.contradictions) == 2
    assert {p.split(":")[0] for p in result.contradictions} == {"a", "b"}
