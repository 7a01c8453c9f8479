"""The planner's rules for replacing, renaming and deleting without leaving a name uncovered
(``reconciler.plan.succession``, ``reconciler.plan.moves``), on plain objects."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.plan.inputs import Desired, Observed, Policy
from reconciler.plan.moves import find_moves
from reconciler.plan.saved import check_fresh
from reconciler.plan.succession import succession, view_names
from reconciler.state.model import Intent
from tests.plan.test_planner import (
    CONTRACT,
    HOOK,
    desired,
    entry,
    kinds,
    observed_enrollment,
    plan,
    state,
)


def _named(name: str, cn: str, *, moved_from: str | None = None, validation: str = "dv",
           sans: tuple[str, ...] = (), policy: Policy = HOOK, spec_hash: str = "h2") -> Desired:
    d = desired(name=name, cn=cn, validation=validation, sans=sans, policy=policy, spec_hash=spec_hash)
    return d.model_copy(update={"moved_from": moved_from})


# -- succession --------------------------------------------------------------------------------


def test_successors_are_the_specs_covering_any_name() -> None:
    old = frozenset({"www.example.com", "example.com", "legacy.example.com"})
    heirs = succession(old, [_named("apex", "example.com"), _named("api", "api.example.com"),
                             _named("www2", "www.example.com", sans=("example.com",))])
    assert heirs.successors == ("apex", "www2")
    assert heirs.covered == {"www.example.com", "example.com"} and heirs.dropped == {"legacy.example.com"}
    assert view_names({"common_name": "A.example.com", "sans": ["b.example.com"]}) == {"a.example.com",
                                                                                        "b.example.com"}


def test_replaced_by_is_a_successor_whatever_the_names() -> None:
    heirs = succession(frozenset({"old.example.com"}), [_named("new", "new.example.com")], replaced_by="new")
    assert heirs.successors == ("new",) and heirs.dropped == {"old.example.com"}


# -- replacement ---------------------------------------------------------------------------------


def test_replacement_without_allow_delete_creates_and_keeps_the_old_one_blocked() -> None:
    p = plan([desired(spec_hash="h2", sni_only=False)], Observed(bound={"www": observed_enrollment()}),
             state(www=entry()))
    assert kinds(p) == [("www", "replace")]
    (b,) = p.blocked
    assert b.key == ("www@10000", "delete") and b.blocked == "deletes are off by default"
    assert "--allow-delete" in (b.remedy or "") and "state rm www@10000" in (b.remedy or "")


def test_replacement_under_prevent_destroy_releases_the_old_enrollment() -> None:
    p = plan([desired(spec_hash="h2", sni_only=False)], Observed(bound={"www": observed_enrollment()}),
             state(www=entry(prevent_destroy=True)))
    assert kinds(p) == [("www", "replace"), ("www@10000", "release")]
    release = p.actions[1]
    assert release.successors == ("www",) and "prevent_destroy" in release.steps[-1]
    assert "1 to release" in p.summary_line()


def test_replacement_of_an_enrollment_with_a_pending_change_keeps_it_until_the_change_ends() -> None:
    from tests.plan.test_planner import change
    busy = observed_enrollment(changes=(change("wait-upload-third-party", "awaiting-input"),))
    p = plan([desired(spec_hash="h2", sni_only=False)], Observed(bound={"www": busy}), state(www=entry()),
             allow_delete=True)
    assert kinds(p) == [("www", "replace")]
    assert p.blocked[0].key == ("www@10000", "delete") and "cancels pending change" in (p.blocked[0].blocked or "")


def test_a_retired_entry_waits_for_its_successor_which_creates_with_allow_duplicate_cn() -> None:
    # After a crash between "retire" and the create: the state holds www@10000 replaced by www.
    s = state(**{"www@10000": entry(replaced_by="www")})
    p = plan([desired(spec_hash="h2", sni_only=False)], Observed(bound={"www@10000": observed_enrollment()}), s,
             allow_delete=True)
    assert kinds(p) == [("www", "create"), ("www@10000", "delete")]
    create, delete = p.actions
    assert create.allow_duplicate_cn and "holds the CN" in create.summary
    assert delete.reason == "replaced" and delete.successors == ("www",)
    assert "deleted once www is deployed" in delete.summary


def test_adopting_an_enrollment_with_immutable_differences_is_refused_not_replaced() -> None:
    found = observed_enrollment(eid=555, sni_only=False)
    p = plan([desired()], Observed(candidates={"www": (found,)}), state(), allow_delete=True)
    assert [a.kind for a in p.actions] == ["adopt"]
    assert p.blocked[0].reason == "immutable-field" and "import" in (p.blocked[0].remedy or "")


# -- deletes wait for their successors -----------------------------------------------------------


def test_a_removed_spec_is_deleted_after_the_spec_that_takes_over_its_names() -> None:
    old_enrollment = observed_enrollment(eid=9, cn="www.example.com", sans=("example.com", "old.example.com"))
    new = _named("apex", "example.com", sans=("www.example.com",))
    p = plan([new], Observed(bound={"www": old_enrollment}), state(www=entry(eid=9)), allow_delete=True)
    assert kinds(p) == [("apex", "create"), ("www", "delete")]
    delete = p.actions[1]
    assert delete.successors == ("apex",) and delete.dropped_names == ("old.example.com",)
    assert delete.steps[0] == "wait until apex serve(s) example.com, www.example.com from a deployed certificate"
    assert "old.example.com leave(s) the network" in delete.steps[1]


def test_a_delete_whose_successor_is_blocked_is_blocked_too() -> None:
    from tests.plan.test_planner import change
    busy = observed_enrollment(eid=5, cn="api.example.com", changes=(change("wait-review", "awaiting-input"),))
    successor = desired(name="api", cn="api.example.com", spec_hash="h2", sans=("www.example.com",))
    old = observed_enrollment(eid=9)
    p = plan([successor], Observed(bound={"api": busy, "www": old}),
             state(api=entry(eid=5, cn="api.example.com"), www=entry(eid=9)), allow_delete=True)
    assert kinds(p) == []
    assert [b.key for b in p.blocked] == [("api", "update"), ("www", "delete")]
    assert "successor(s) api are blocked" in (p.blocked[1].blocked or "")


def test_a_delete_cps_accepted_is_in_progress_until_the_enrollment_is_gone() -> None:
    deleting = entry(eid=9, intent=Intent(op="deleting", common_name="www.example.com", contract_id=CONTRACT,
                                          at=datetime(2026, 12, 1, tzinfo=UTC)))
    still = plan([], Observed(bound={"www": observed_enrollment(eid=9)}), state(www=deleting))
    assert kinds(still) == [("www", "in-progress")] and not still.has_changes
    assert still.actions[0].summary == "CPS is removing enrollment 9"
    gone = plan([], Observed(gone={"www": 9}), state(www=deleting))
    assert kinds(gone) == [("www", "in-progress")] and not gone.has_changes and not gone.drift


# -- renames ----------------------------------------------------------------------------------------


def test_a_renamed_spec_is_moved_not_created_and_deleted() -> None:
    p = plan([_named("www-renamed", "www.example.com")], Observed(bound={"www": observed_enrollment()}),
             state(www=entry()), allow_delete=True)
    assert kinds(p) == [("www-renamed", "move")]
    move = p.actions[0]
    assert move.reason == "renamed" and move.moved_from == "www" and move.entry_name == "www"
    assert move.enrollment_id == 10000 and "1 to move" in p.summary_line()
    assert p.blocked == ()


def test_a_rename_plus_a_type_switch_is_a_move_then_a_replacement() -> None:
    switched = _named("www-tp", "www.example.com", validation="third-party",
                      policy=Policy(signer=True)).model_copy(update={"view": {
                          **observed_enrollment().view, "type": "third-party"}})
    p = plan([switched], Observed(bound={"www": observed_enrollment()}), state(www=entry()), allow_delete=True)
    assert kinds(p) == [("www-tp", "move"), ("www-tp", "replace"), ("www-tp@10000", "delete")]
    assert p.actions[1].allow_duplicate_cn and p.actions[1].entry_name == "www"
    assert p.actions[2].entry_name == "www"


def test_moved_from_settles_an_ambiguous_rename() -> None:
    s = state(a=entry(eid=1), b=entry(eid=2))
    o = Observed(bound={"a": observed_enrollment(eid=1), "b": observed_enrollment(eid=2)})
    unsure = plan([_named("c", "www.example.com")], o, s, allow_delete=True)
    assert kinds(unsure) == [] and unsure.blocked[0].reason == "ambiguous-rename"
    assert "a, b" in (unsure.blocked[0].blocked or "") and "moved_from" in (unsure.blocked[0].remedy or "")
    sure = plan([_named("c", "www.example.com", moved_from="b")], o, s, allow_delete=True)
    assert kinds(sure) == [("c", "move"), ("a", "delete")]
    assert sure.actions[0].reason == "moved-from" and sure.actions[1].successors == ("c",)


def test_a_detected_rename_with_unbound_look_alikes_asks_for_moved_from() -> None:
    o = Observed(bound={"www": observed_enrollment()}, candidates={"w2": (observed_enrollment(eid=77),)})
    p = plan([_named("w2", "www.example.com")], o, state(www=entry()))
    assert kinds(p) == [] and p.blocked[0].reason == "ambiguous-rename" and "77" in (p.blocked[0].blocked or "")


def test_moved_from_rules() -> None:
    s = state(www=entry(), gone=entry(eid=None))
    found = find_moves([_named("new", "www.example.com", moved_from="www"), _named("www", "other.example.com")], s)
    assert found.conflicts == {"new": "moved_from: www names a spec that still exists; one enrollment cannot "
                                      "belong to both"}
    later = find_moves([_named("new", "x.example.com", moved_from="never")], state())
    assert later.moves == {} and "not in state" in later.warnings[0]
    # Once applied, moved_from is history: the bound spec ignores it.
    done = find_moves([_named("new", "www.example.com", moved_from="www")], state(new=entry()))
    assert done.moves == {} and done.warnings == ()
    # A replaced enrollment is never a rename source.
    assert find_moves([_named("www", "www.example.com")], state(**{"www@1": entry(replaced_by="www")})).moves == {}


def test_two_specs_sharing_a_cn_after_state_loss_are_refused_not_created() -> None:
    both = (observed_enrollment(eid=1), observed_enrollment(eid=2))
    dup = Policy(publisher="hook", allow_duplicate_common_name=True)
    p = plan([desired(name="a", policy=dup), desired(name="b", policy=dup)], Observed(candidates={"a": both,
                                                                                                  "b": both}), state())
    assert kinds(p) == [] and {b.reason for b in p.blocked} == {"several-same-cn"}


def test_saved_plan_checks_a_move_against_the_old_binding() -> None:
    o = Observed(bound={"www": observed_enrollment()})
    s = state(www=entry())
    p = plan([_named("www-renamed", "www.example.com")], o, s)
    assert check_fresh(p, s, o) == []
    moved = Observed(bound={"www": observed_enrollment().model_copy(update={"fingerprint": "other"})})
    assert check_fresh(p, s, moved) == ["www-renamed: enrollment 10000 changed in CPS since the plan was made"]


def test_a_spec_back_while_its_enrollment_is_being_deleted_never_binds_it_again() -> None:
    deleting = entry(eid=9, intent=Intent(op="deleting", common_name="www.example.com", contract_id=CONTRACT,
                                          at=datetime(2026, 12, 1, tzinfo=UTC)))
    still = plan([desired()], Observed(bound={"www": observed_enrollment(eid=9)}), state(www=deleting))
    assert kinds(still) == [] and still.blocked[0].reason == "being-deleted"
    gone = plan([desired()], Observed(gone={"www": 9}), state(www=deleting))
    assert kinds(gone) == [("www", "create")] and gone.actions[0].reason == "new" and not gone.drift


# -- a checkout behind the last apply ---------------------------------------------------------------

def test_an_update_from_a_checkout_behind_the_last_apply_is_blocked_not_called_drift() -> None:
    from reconciler.plan.inputs import Revision
    applied = entry(spec_hash="h-a", applied_commit="a" * 40)
    cps = Observed(bound={"www": observed_enrollment(sans=("new.example.com",))})
    behind = Revision(commit="b" * 40, contains=frozenset())
    p = plan([desired(spec_hash="h-b")], cps, state(www=applied), revision=behind)
    assert kinds(p) == [] and not p.drift and p.commit == "b" * 40
    (b,) = p.blocked
    assert b.reason == "behind-last-apply" and "commit aaaaaaaaaaaa" in (b.blocked or "")
    assert "not drift" in (b.blocked or "") and "--force" in (b.remedy or "")
    assert kinds(plan([desired(spec_hash="h-b")], cps, state(www=applied), revision=behind, force=True)) == [
        ("www", "update")]
    ahead = Revision(commit="c" * 40, contains=frozenset({"a" * 40}))
    assert kinds(plan([desired(spec_hash="h-b")], cps, state(www=applied), revision=ahead)) == [("www", "update")]
    # The same spec as last applied: the difference is real drift, put back as ever.
    same = plan([desired(spec_hash="h-a")], cps, state(www=applied), revision=behind)
    assert kinds(same) == [("www", "update")] and same.drift
    # Outside git nothing is behind.
    assert kinds(plan([desired(spec_hash="h-b")], cps, state(www=applied))) == [("www", "update")]
