"""The planner on plain objects: every classification, ordering, safety rule and targeting.

Views are literal dicts shaped like ``cps_view`` output; classification is the real ``field_class``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.cps.mapping import field_class
from reconciler.errors import UnsafePlan
from reconciler.plan.inputs import Desired, Observed, ObservedChange, ObservedEnrollment, Policy
from reconciler.plan.model import Plan, Unmanaged
from reconciler.plan.planner import PlanOptions, make_plan
from reconciler.plan.safety import Thresholds
from reconciler.state.model import ChangeInFlight, Intent, PublishedChallenge, State, StateEntry

CONTRACT = "ctr_1-AB123"


def view(cn: str = "www.example.com", sans: tuple[str, ...] = (), **over: Any) -> dict[str, Any]:
    v: dict[str, Any] = {
        "common_name": cn,
        "sans": sorted({cn, *sans}),
        "signature_algorithm": "SHA-256",
        "admin_contact": {"first_name": "Ada", "email": "ada@example.com"},
        "change_management": False,
        "secure_network": "enhanced-tls",
        "sni_only": True,
        "geography": "core",
        "network_configuration": {"ocsp_stapling": "on", "disallowed_tls_versions": ["TLSv1", "TLSv1_1"]},
    }
    for key, value in over.items():
        if key == "network":
            v["network_configuration"] = {**v["network_configuration"], **value}
        else:
            v[key] = value
    return v


HOOK = Policy(publisher="hook", challenge_method="dns-01")


def desired(name: str = "www", cn: str = "www.example.com", spec_hash: str = "h1",
            policy: Policy = HOOK, validation: str = "dv", **view_over: Any) -> Desired:
    return Desired(name=name, validation=validation, contract_id=CONTRACT, common_name=cn,
                   view=view(cn, **view_over), spec_hash=spec_hash, policy=policy, file=f"specs/{name}.yaml")


def observed_enrollment(eid: int = 10000, cn: str = "www.example.com", changes: tuple[ObservedChange, ...] = (),
                        **view_over: Any) -> ObservedEnrollment:
    return ObservedEnrollment(enrollment_id=eid, contract_id=CONTRACT, common_name=cn, view=view(cn, **view_over),
                              fingerprint=f"fp-{eid}", changes=changes)


def entry(eid: int | None = 10000, cn: str = "www.example.com", spec_hash: str | None = "h1",
          **extra: Any) -> StateEntry:
    return StateEntry(enrollment_id=eid, contract_id=CONTRACT, common_name=cn, spec_hash=spec_hash, **extra)


def state(**entries: StateEntry) -> State:
    return State(lineage="lin-1", serial=7, entries=entries)


def plan(d: list[Desired], o: Observed | None, s: State, **opts: Any) -> Plan:
    return make_plan(d, o, s, PlanOptions(**opts), classify=field_class)


def kinds(p: Plan) -> list[tuple[str, str]]:
    return [a.key for a in p.actions]


def change(status: str, state_: str = "awaiting-input", *inputs: str, cid: int = 20000) -> ObservedChange:
    return ObservedChange(change_id=cid, change_type="new-certificate", status=status, state=state_,
                          allowed_input=inputs)


# -- create / adopt ------------------------------------------------------------------------------

def test_empty_everything_plans_nothing() -> None:
    p = plan([], Observed(), state())
    assert p.actions == () and not p.has_changes
    assert p.summary_line() == "Plan: 0 to create, 0 to update, 0 to delete, 0 to continue."


def test_new_spec_is_created_with_its_workflow_steps() -> None:
    p = plan([desired()], Observed(), state())
    (a,) = p.actions
    assert a.key == ("www", "create") and a.reason == "new" and a.new_certificate
    assert a.steps[0] == "create enrollment"
    assert "publish DV challenges (dns-01 via hook)" in a.steps and a.steps[-1] == "wait for deployment"
    assert a.facts is not None and a.facts.same_cn_ids == ()
    assert p.has_changes and p.summary_line() == "Plan: 1 to create, 0 to update, 0 to delete, 0 to continue."


def test_third_party_create_steps_follow_its_signing_setup() -> None:
    signer = desired(validation="third-party", policy=Policy(signer=True))
    files = desired(validation="third-party", policy=Policy(certificate_files=("rsa",)))
    person = desired(validation="third-party", policy=Policy())
    assert "sign CSRs (signer hook)" in plan([signer], Observed(), state()).actions[0].steps
    assert "check and upload certificates (rsa)" in plan([files], Observed(), state()).actions[0].steps
    assert "export CSRs (a person has the CA sign them)" in plan([person], Observed(), state()).actions[0].steps


def test_existing_enrollment_with_same_cn_is_adopted_not_duplicated() -> None:
    found = observed_enrollment(eid=555)
    p = plan([desired()], Observed(candidates={"www": (found,)}), state())
    assert kinds(p) == [("www", "adopt")]
    a = p.actions[0]
    assert a.enrollment_id == 555 and a.reason == "adopt-existing" and a.facts and a.facts.enrollment_hash == "fp-555"
    assert p.summary_line() == "Plan: 0 to create, 1 to adopt, 0 to update, 0 to delete, 0 to continue."


def test_adopting_an_enrollment_that_differs_adds_an_update_after_the_adopt() -> None:
    found = observed_enrollment(eid=555, sans=("old.example.com",))
    p = plan([desired(sans=("new.example.com",))], Observed(candidates={"www": (found,)}), state())
    assert kinds(p) == [("www", "adopt"), ("www", "update")]
    assert p.actions[1].reason == "adopted-differs"


def test_several_enrollments_with_the_same_cn_block_adoption() -> None:
    both = (observed_enrollment(eid=1), observed_enrollment(eid=2))
    p = plan([desired()], Observed(candidates={"www": both}), state())
    assert p.actions == ()
    (b,) = p.blocked
    assert b.kind == "adopt" and "1, 2" in (b.blocked or "") and "import" in (b.remedy or "")
    assert p.has_changes


def test_allow_duplicate_common_name_with_an_unbound_same_cn_enrollment_is_ambiguous() -> None:
    # It may be this spec's own enrollment (state lost) or another's: never guess.
    found = observed_enrollment(eid=555)
    d = desired(policy=Policy(publisher="hook", allow_duplicate_common_name=True))
    p = plan([d], Observed(candidates={"www": (found,)}), state())
    assert p.actions == ()
    (b,) = p.blocked
    assert b.reason == "several-same-cn" and "555" in (b.blocked or "") and "will not guess" in (b.blocked or "")
    assert "--create-duplicate www" in (b.remedy or "") and "reconcile import" in (b.remedy or "")


def test_create_duplicate_creates_anyway_with_allow_duplicate_cn() -> None:
    found = observed_enrollment(eid=555)
    d = desired(policy=Policy(publisher="hook", allow_duplicate_common_name=True))
    p = plan([d], Observed(candidates={"www": (found,)}), state(), create_duplicates=("www",))
    assert kinds(p) == [("www", "create")] and p.actions[0].facts.same_cn_ids == (555,)  # type: ignore[union-attr]
    assert p.actions[0].allow_duplicate_cn


def test_interrupted_create_is_resumed_by_adoption_even_when_duplicates_are_allowed() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    pending = entry(eid=None, spec_hash=None,
                    intent=Intent(op="creating", common_name="www.example.com", contract_id=CONTRACT, at=at))
    d = desired(policy=Policy(publisher="hook", allow_duplicate_common_name=True))
    found = observed_enrollment(eid=777)
    p = plan([d], Observed(candidates={"www": (found,)}), state(www=pending))
    assert kinds(p) == [("www", "adopt")] and p.actions[0].reason == "resume-create"
    nothing_there = plan([d], Observed(), state(www=pending))
    assert kinds(nothing_there) == [("www", "create")] and nothing_there.actions[0].reason == "resume-create"


# -- updates and their classification -----------------------------------------------------------

def test_identical_enrollment_plans_nothing() -> None:
    p = plan([desired()], Observed(bound={"www": observed_enrollment()}), state(www=entry()))
    assert p.actions == () and p.unchanged == ("www",) and not p.has_changes


def test_san_added_is_a_certificate_update() -> None:
    p = plan([desired(sans=("api.example.com",), spec_hash="h2")],
             Observed(bound={"www": observed_enrollment()}), state(www=entry()))
    (a,) = p.actions
    assert a.key == ("www", "update") and a.reason == "spec-changed" and a.new_certificate
    (c,) = a.changes
    assert c.path == "sans" and c.field_class == "certificate"
    assert c.old == ["www.example.com"] and c.new == ["api.example.com", "www.example.com"]
    assert "update enrollment (new certificate)" in a.steps and p.drift == ()


def test_network_only_change_is_update_network() -> None:
    p = plan([desired(spec_hash="h2", network={"ocsp_stapling": "off"})],
             Observed(bound={"www": observed_enrollment()}), state(www=entry()))
    (a,) = p.actions
    assert a.kind == "update-network" and not a.new_certificate
    assert [c.path for c in a.changes] == ["network_configuration.ocsp_stapling"]
    assert any("no new one" in s for s in a.steps)
    assert p.summary_line() == "Plan: 0 to create, 1 to update, 0 to delete, 0 to continue."


def test_metadata_only_change_is_an_update_without_certificate() -> None:
    p = plan([desired(spec_hash="h2", admin_contact={"first_name": "Bob", "email": "ada@example.com"})],
             Observed(bound={"www": observed_enrollment()}), state(www=entry()))
    (a,) = p.actions
    assert a.kind == "update" and a.reason == "metadata-only" and not a.new_certificate
    assert a.changes[0].path == "admin_contact.first_name"
    assert a.steps == ("update enrollment (contacts/organisation only: no new certificate, no deployment)",)


def test_network_plus_metadata_stays_update_network() -> None:
    d = desired(spec_hash="h2", network={"ocsp_stapling": "off"}, change_management=True)
    p = plan([d], Observed(bound={"www": observed_enrollment()}), state(www=entry()))
    assert kinds(p) == [("www", "update-network")] and len(p.actions[0].changes) == 2


@pytest.mark.parametrize("over", [{"cn": "new.example.com"}, {"sni_only": False},
                                  {"secure_network": "standard-tls"}])
def test_immutable_field_change_plans_a_replacement(over: dict[str, Any]) -> None:
    p = plan([desired(spec_hash="h2", **over)], Observed(bound={"www": observed_enrollment()}), state(www=entry()),
             allow_delete=True)
    assert kinds(p) == [("www", "replace"), ("www@10000", "delete")]
    replace, delete = p.actions
    assert replace.reason == "immutable-field" and replace.enrollment_id == 10000 and replace.new_certificate
    assert replace.allow_duplicate_cn == ("cn" not in over)  # the old one holds the CN until it goes
    assert delete.successors == ("www",) and delete.entry_name == "www" and delete.enrollment_id == 10000
    assert p.has_changes and "1 to replace" in p.summary_line()


def test_difference_with_unchanged_spec_is_drift_and_reverted() -> None:
    p = plan([desired()], Observed(bound={"www": observed_enrollment(network={"ocsp_stapling": "off"})}),
             state(www=entry()))
    (d,) = p.drift
    assert d.kind == "changed" and d.changes[0].path == "network_configuration.ocsp_stapling"
    assert d.changes[0].old == "off" and d.changes[0].new == "on"
    assert kinds(p) == [("www", "update-network")] and p.actions[0].reason == "drift"


def test_deleted_enrollment_is_drift_and_created_again() -> None:
    p = plan([desired()], Observed(gone={"www": 10000}), state(www=entry()))
    assert [(d.kind, d.enrollment_id) for d in p.drift] == [("gone", 10000)]
    assert kinds(p) == [("www", "create")] and p.actions[0].reason == "enrollment-gone"


# -- pending changes -----------------------------------------------------------------------------

def test_update_that_would_cancel_a_pending_change_is_blocked() -> None:
    o = observed_enrollment(changes=(change("coodinate-domain-validation", "awaiting-input",
                                            "lets-encrypt-challenges"),))
    d = desired(sans=("api.example.com",), spec_hash="h2")
    p = plan([d], Observed(bound={"www": o}), state(www=entry()))
    assert p.actions == ()
    (b,) = p.blocked
    assert "cancels pending change 20000" in (b.blocked or "") and "--cancel-pending" in (b.remedy or "")
    allowed = plan([d], Observed(bound={"www": o}), state(www=entry()), cancel_pending=True)
    (a,) = allowed.actions
    assert a.kind == "update" and a.cancels_change == 20000 and a.steps[0] == "cancel pending change 20000"


@pytest.mark.parametrize(("policy", "inputs", "kind", "waits"), [
    (HOOK, ("lets-encrypt-challenges",), "continue", "apply"),
    (Policy(publisher="manual"), ("lets-encrypt-challenges",), "in-progress", "person"),
    (Policy(signer=True), ("third-party-certificate",), "continue", "apply"),
    (Policy(certificate_files=("rsa", "ecdsa")), ("third-party-certificate",), "continue", "apply"),
    (Policy(), ("third-party-certificate",), "in-progress", "person"),
    (Policy(acknowledge_pre_verification_warnings=True), ("pre-verification-warnings-acknowledgement",),
     "continue", "apply"),
    (Policy(), ("pre-verification-warnings-acknowledgement",), "in-progress", "person"),
    (Policy(auto_approve_warnings=("SNI_DNS_OVERLAP",)), ("post-verification-warnings-acknowledgement",),
     "continue", "apply"),
    (Policy(acknowledge_post_verification_warnings=True), ("post-verification-warnings-acknowledgement",),
     "continue", "apply"),
    (Policy(acknowledge_change_management=True), ("change-management",), "continue", "apply"),
    (Policy(), ("change-management",), "in-progress", "person"),
    (Policy(), ("something-new",), "in-progress", "person"),
])
def test_pending_change_is_continued_only_when_apply_can_give_the_input(
        policy: Policy, inputs: tuple[str, ...], kind: str, waits: str) -> None:
    o = observed_enrollment(changes=(change("some-step", "awaiting-input", *inputs),))
    p = plan([desired(policy=policy)], Observed(bound={"www": o}), state(www=entry()))
    (a,) = p.actions
    assert a.kind == kind and a.pending is not None and a.pending.waits_on == waits
    assert a.pending.waiting_for == inputs and a.facts and a.facts.change_id == 20000
    assert p.has_changes is (kind == "continue")
    if inputs == ("lets-encrypt-challenges",) and waits == "person":
        assert "`reconcile challenges www`" in a.summary


def test_continue_steps_name_the_inputs_and_the_wait() -> None:
    o = observed_enrollment(changes=(change("coodinate-domain-validation", "awaiting-input",
                                            "lets-encrypt-challenges"),))
    p = plan([desired()], Observed(bound={"www": o}), state(www=entry()))
    assert p.actions[0].steps == ("publish DV challenges (dns-01 via hook)", "acknowledge DV challenges",
                                  "wait for deployment")
    assert p.summary_line() == "Plan: 0 to create, 0 to update, 0 to delete, 1 to continue."


def test_challenges_already_published_for_this_change_wait_on_cps() -> None:
    o = observed_enrollment(changes=(change("coodinate-domain-validation", "awaiting-input",
                                            "lets-encrypt-challenges"),))
    published = PublishedChallenge(domain="www.example.com", type="dns-01",
                                   record_name="_acme-challenge.www.example.com.", value="v", publisher="hook",
                                   change_id=20000)
    p = plan([desired()], Observed(bound={"www": o}), state(www=entry(challenges=(published,))))
    (a,) = p.actions
    assert a.kind == "in-progress" and a.pending and a.pending.waits_on == "cps" and not p.has_changes


def test_deployment_in_progress_is_listed_but_not_a_change() -> None:
    o = observed_enrollment(changes=(change("deploy-production", "running"),))
    p = plan([desired()], Observed(bound={"www": o}), state(www=entry()))
    (a,) = p.actions
    assert a.kind == "in-progress" and a.reason == "waiting-on-cps"
    assert a.steps == ("wait for deployment (deploy-production)",)
    assert not p.has_changes and p.counts()["in_progress"] == 1
    no_wait = desired(policy=Policy(publisher="hook", wait_for_deployment=False))
    assert plan([no_wait], Observed(bound={"www": o}), state(www=entry())).actions[0].steps == ()


def test_failed_change_is_blocked_with_a_hint() -> None:
    failed = ObservedChange(change_id=3, status="error", state="error", error="CA refused")
    p = plan([desired()], Observed(bound={"www": observed_enrollment(changes=(failed,))}), state(www=entry()))
    assert p.actions == () and p.blocked[0].reason == "change-failed" and "CA refused" in (p.blocked[0].blocked or "")


# -- deletes -------------------------------------------------------------------------------------

def test_delete_needs_allow_delete() -> None:
    s, o = state(old=entry(eid=9)), Observed(bound={"old": observed_enrollment(eid=9)})
    p = plan([], o, s)
    assert p.actions == () and p.blocked[0].kind == "delete" and "--allow-delete" in (p.blocked[0].remedy or "")
    p2 = plan([], o, s, allow_delete=True)
    (a,) = p2.actions
    assert a.key == ("old", "delete") and a.enrollment_id == 9 and "remove state entry" in a.steps
    assert p2.summary_line() == "Plan: 0 to create, 0 to update, 1 to delete, 0 to continue."


def test_prevent_destroy_blocks_delete_even_when_allowed() -> None:
    s = state(old=entry(eid=9, prevent_destroy=True))
    p = plan([], Observed(bound={"old": observed_enrollment(eid=9)}), s, allow_delete=True, force=True)
    assert p.actions == () and "prevent_destroy" in (p.blocked[0].blocked or "")


def test_delete_that_cancels_a_pending_change_needs_cancel_pending() -> None:
    o = Observed(bound={"old": observed_enrollment(eid=9, changes=(change("deploy-staging", "running"),))})
    p = plan([], o, state(old=entry(eid=9)), allow_delete=True)
    assert p.actions == () and "cancels pending change" in (p.blocked[0].blocked or "")
    p2 = plan([], o, state(old=entry(eid=9)), allow_delete=True, cancel_pending=True)
    assert p2.actions[0].cancels_change == 20000 and p2.actions[0].steps[0] == "cancel pending change 20000"


def test_entry_whose_enrollment_is_gone_is_just_forgotten() -> None:
    p = plan([], Observed(gone={"old": 9}), state(old=entry(eid=9)))
    (a,) = p.actions
    assert a.kind == "delete" and a.reason == "gone-from-cps" and a.enrollment_id is None
    assert a.steps == ("remove state entry",)
    assert [(d.kind, d.enrollment_id) for d in p.drift] == [("gone", 9)]  # reported, never dropped silently


# -- order, thresholds, targets ------------------------------------------------------------------

def test_actions_are_ordered_by_kind_rank_then_name() -> None:
    specs = [desired("b-new", "b.example.com"), desired("a-new", "a.example.com"),
             desired("upd", "upd.example.com", spec_hash="h2", sans=("x.example.com",)),
             desired("cont", "cont.example.com"), desired("wait", "wait.example.com"),
             desired("adopted", "adopted.example.com")]
    o = Observed(
        bound={"upd": observed_enrollment(2, "upd.example.com"),
               "cont": observed_enrollment(3, "cont.example.com", changes=(
                   change("s", "awaiting-input", "lets-encrypt-challenges"),)),
               "wait": observed_enrollment(4, "wait.example.com", changes=(change("deploy-staging", "running"),)),
               "gone": observed_enrollment(5, "gone.example.com")},
        candidates={"adopted": (observed_enrollment(6, "adopted.example.com"),)})
    s = state(upd=entry(2, "upd.example.com"), cont=entry(3, "cont.example.com"),
              wait=entry(4, "wait.example.com"), gone=entry(5, "gone.example.com"))
    p = plan(specs, o, s, allow_delete=True)
    assert kinds(p) == [("a-new", "create"), ("adopted", "adopt"), ("b-new", "create"), ("upd", "update"),
                        ("cont", "continue"), ("wait", "in-progress"), ("gone", "delete")]
    assert len({a.key for a in p.actions}) == len(p.actions)


def _fleet(n: int) -> tuple[list[Desired], Observed, State]:
    names = [f"e{i:02d}" for i in range(n)]
    specs = [desired(n_, f"{n_}.example.com") for n_ in names]
    o = Observed(bound={n_: observed_enrollment(i, f"{n_}.example.com") for i, n_ in enumerate(names)})
    s = state(**{n_: entry(i, f"{n_}.example.com") for i, n_ in enumerate(names)})
    return specs, o, s


def test_update_threshold_stops_mass_changes_unless_forced() -> None:
    specs, o, s = _fleet(10)
    changed = [desired(d.name, d.common_name, spec_hash="h2", network={"ocsp_stapling": "off"}) if i < 4 else d
               for i, d in enumerate(specs)]
    p = plan(changed, o, s)
    assert p.unsafe and "4 of 10" in p.unsafe[0]
    with pytest.raises(UnsafePlan, match="--force"):
        p.ensure_safe()
    forced = plan(changed, o, s, force=True)
    assert forced.unsafe == () and any("--force" in w for w in forced.warnings)
    forced.ensure_safe()
    three = [desired(d.name, d.common_name, spec_hash="h2", network={"ocsp_stapling": "off"}) if i < 3 else d
             for i, d in enumerate(specs)]
    assert plan(three, o, s).unsafe == ()


def test_delete_threshold_and_small_fleets() -> None:
    specs, o, s = _fleet(10)
    p = plan(specs[:6], o, s, allow_delete=True)
    assert len(p.unsafe) == 1 and "deleted" in p.unsafe[0]
    small_specs, small_o, small_s = _fleet(9)
    assert plan([], small_o, small_s, allow_delete=True).unsafe == ()  # below min_existing
    strict = plan(specs[:9], o, s, allow_delete=True, thresholds=Thresholds(delete_fraction=0.05))
    assert strict.unsafe


def test_targets_limit_the_plan_and_warn() -> None:
    specs = [desired("a", "a.example.com"), desired("b", "b.example.com")]
    o = Observed(unmanaged=(Unmanaged(enrollment_id=1, common_name="x.example.com", contract_id=CONTRACT),))
    p = plan(specs, o, state(), targets=("b", "zzz"))
    assert kinds(p) == [("b", "create")] and p.targets == ("b", "zzz")
    assert any("--target" in w and "exceptional" in w for w in p.warnings)
    assert any("zzz" in w for w in p.warnings)
    assert p.unmanaged == ()
    assert plan(specs, o, state()).unmanaged == o.unmanaged


# -- planning without refresh --------------------------------------------------------------------

def test_no_refresh_plans_from_state_and_says_so() -> None:
    s = state(same=entry(1, "same.example.com"), changed=entry(2, "changed.example.com"),
              busy=entry(3, "busy.example.com", change=ChangeInFlight(change_id=8, status="deploy-staging",
                                                                      state="running")))
    specs = [desired("same", "same.example.com"), desired("changed", "changed.example.com", spec_hash="h2"),
             desired("busy", "busy.example.com"), desired("new", "new.example.com")]
    p = plan(specs, None, s)
    assert not p.refreshed and any("WITHOUT refreshing" in w for w in p.warnings)
    assert kinds(p) == [("new", "create"), ("changed", "update"), ("busy", "in-progress")]
    assert p.unchanged == ("same",)
    assert "fields unknown" in p.actions[1].summary


def test_no_refresh_update_over_a_recorded_change_is_blocked() -> None:
    s = state(w=entry(3, change=ChangeInFlight(change_id=8, status="deploy-staging", state="running")))
    p = plan([desired("w", spec_hash="h2")], None, s)
    assert p.actions == () and p.blocked[0].kind == "update"
    p2 = plan([desired("w", spec_hash="h2")], None, s, cancel_pending=True)
    assert p2.actions[0].cancels_change == 8


def test_default_classifier_is_the_mapping() -> None:
    d = desired(spec_hash="h2", network={"ocsp_stapling": "off"})
    p = make_plan([d], Observed(bound={"www": observed_enrollment()}), state(www=entry()), PlanOptions())
    assert kinds(p) == [("www", "update-network")]


def test_plan_is_stamped_with_state_identity_and_settings() -> None:
    p = plan([desired()], Observed(), state(), allow_delete=True, now="2025-01-01T00:00:00Z")
    assert (p.state_lineage, p.state_serial, p.created_at) == ("lin-1", 7, "2025-01-01T00:00:00Z")
    assert p.settings.allow_delete and not p.settings.force


def test_interrupted_create_without_refresh_warns_and_recreates_carefully() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    pending = entry(eid=None, spec_hash=None,
                    intent=Intent(op="creating", common_name="www.example.com", contract_id=CONTRACT, at=at))
    p = plan([desired()], None, state(www=pending))
    assert kinds(p) == [("www", "create")] and p.actions[0].reason == "resume-create"
    assert any("interrupted" in w and "by CN" in w for w in p.warnings)


@pytest.mark.parametrize(("policy", "expected", "absent"), [
    (Policy(publisher="manual"), ["show DV challenges for manual publication (a person publishes them)"],
     ["acknowledge DV challenges"]),
    (Policy(publisher="hook", change_management=True, acknowledge_change_management=True),
     ["acknowledge change management"], []),
    (Policy(publisher="hook", change_management=True),
     ["wait for change management acknowledgement (a person)"], []),
    (Policy(publisher="hook", acknowledge_post_verification_warnings=True),
     ["acknowledge post-verification warnings if any (per spec policy)"], []),
    (Policy(publisher="hook", wait_for_deployment=False), [], ["wait for deployment"]),
])
def test_create_steps_follow_the_spec_policy(policy: Policy, expected: list[str], absent: list[str]) -> None:
    steps = plan([desired(policy=policy)], Observed(), state()).actions[0].steps
    assert all(s in steps for s in expected), steps
    assert not any(s in steps for s in absent), steps


def test_plan_helpers_select_by_kind_and_name() -> None:
    o = observed_enrollment(changes=(change("deploy-staging", "running"),))
    p = plan([desired(), desired("api", "api.example.com")], Observed(bound={"www": o}), state(www=entry()))
    assert [a.name for a in p.in_progress] == ["www"] and [a.name for a in p.changes] == ["api"]
    assert [a.kind for a in p.actions_for("www")] == ["in-progress"]


def test_cancel_pending_also_clears_a_failed_change_for_an_update() -> None:
    failed = ObservedChange(change_id=3, status="error", state="error", error="CA refused")
    d = desired(sans=("api.example.com",), spec_hash="h2")
    o = Observed(bound={"www": observed_enrollment(changes=(failed,))})
    assert plan([d], o, state(www=entry())).blocked[0].kind == "update"
    (a,) = plan([d], o, state(www=entry()), cancel_pending=True).actions
    assert a.kind == "update" and a.cancels_change == 3
