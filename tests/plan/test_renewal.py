"""Third-party renewal planning (``reconciler.plan.renewal`` and the planner around it), on plain
objects: windows judged by CPS's clock, tokens used once, never over a pending change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.plan.inputs import Observed, Policy
from tests.plan.test_planner import change, desired, entry, kinds, observed_enrollment, plan, state

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
TP = dict(validation="third-party")


def _policy(days: float | None = 30, token: str | None = None) -> Policy:
    return Policy(signer=True, renewal_days=days, renewal_token=token)


def _entry(days_left: float, lifetime: float = 90, token: str | None = None):  # type: ignore[no-untyped-def]
    not_after = NOW + timedelta(days=days_left)
    return entry(certificate_not_after=not_after, certificate_not_before=not_after - timedelta(days=lifetime),
                 renewal_applied=token)


def _observed(now: datetime | None = NOW, **over) -> Observed:  # type: ignore[no-untyped-def]
    return Observed(bound={"www": observed_enrollment(**over)}, now=now)


def test_inside_the_window_by_cps_clock_plans_one_renew_with_the_upload_steps() -> None:
    p = plan([desired(policy=_policy(), **TP)], _observed(), state(www=_entry(days_left=12)))
    assert kinds(p) == [("www", "renew")]
    renew = p.actions[0]
    assert renew.reason == "renewal-window" and renew.new_certificate
    assert "certificate expires 2026-12-16 (12 days left, renewal window 30d): renew" in renew.summary
    assert renew.steps[0].startswith("renew: update enrollment with force-renewal")
    assert "sign CSRs (signer hook)" in renew.steps
    assert "1 to renew" in p.summary_line() and p.has_changes


def test_outside_the_window_or_without_cps_time_nothing_is_planned() -> None:
    assert kinds(plan([desired(policy=_policy(), **TP)], _observed(), state(www=_entry(days_left=45)))) == []
    # The runner's clock does not count: without CPS's time, no window renewal.
    assert kinds(plan([desired(policy=_policy(), **TP)], _observed(now=None), state(www=_entry(days_left=1)))) == []
    # A skewed runner cannot pull it forward: CPS's clock says 45 days left.
    assert kinds(plan([desired(policy=_policy(), **TP)], _observed(now=NOW - timedelta(days=33)),
                      state(www=_entry(days_left=12)))) == []


def test_a_token_renews_once_and_only_once() -> None:
    fresh = _entry(days_left=80)
    p = plan([desired(policy=_policy(days=None, token="2026-12-rotation"), **TP)], _observed(), state(www=fresh))
    assert kinds(p) == [("www", "renew")] and p.actions[0].reason == "renewal-token"
    assert "renewal token '2026-12-rotation'" in p.actions[0].summary
    used = _entry(days_left=80, token="2026-12-rotation")
    assert kinds(plan([desired(policy=_policy(days=None, token="2026-12-rotation"), **TP)], _observed(),
                      state(www=used))) == []


def test_never_over_a_pending_change_and_the_plan_says_why_it_waits() -> None:
    busy = _observed(changes=(change("wait-review-cert-warning", "awaiting-input", cid=31),))
    p = plan([desired(policy=_policy(), **TP)], busy, state(www=_entry(days_left=12)))
    assert [a.kind for a in p.actions] != ["renew"] and "renew" not in {a.kind for a in p.actions}
    assert any("renewal due" in w and "waits until change 31" in w for w in p.warnings)


def test_a_window_not_shorter_than_the_lifetime_is_refused_instead_of_renewing_for_ever() -> None:
    p = plan([desired(policy=_policy(days=60), **TP)], _observed(), state(www=_entry(days_left=20, lifetime=47)))
    assert kinds(p) == [] and p.blocked[0].kind == "renew"
    assert "not shorter than the certificate's lifetime (47d)" in (p.blocked[0].blocked or "")


def test_an_expired_certificate_is_shouted_and_renewed() -> None:
    p = plan([desired(policy=_policy(), **TP)], _observed(), state(www=_entry(days_left=-2)))
    assert any(w.startswith("EXPIRED: www's deployed certificate expired on 2026-12-02") for w in p.warnings)
    assert kinds(p) == [("www", "renew")] and "already expired" in p.actions[0].summary


def test_validity_read_by_refresh_stands_in_for_state_and_a_network_edit_rides_along() -> None:
    enrollment = observed_enrollment(network={"ocsp_stapling": "off"}).model_copy(update={
        "certificate_not_after": NOW + timedelta(days=3), "certificate_not_before": NOW - timedelta(days=87)})
    observed = Observed(bound={"www": enrollment}, now=NOW)
    p = plan([desired(spec_hash="h2", policy=_policy(), **TP)], observed, state(www=entry()))
    assert kinds(p) == [("www", "renew")]
    assert p.actions[0].changes[0].path == "network_configuration.ocsp_stapling"


def test_dv_is_renewed_by_cps_not_planned() -> None:
    assert kinds(plan([desired()], _observed(), state(www=_entry(days_left=1)))) == []


def test_a_certificate_already_inside_the_window_when_uploaded_is_not_renewed_for_ever() -> None:
    # A signer dating certificates by a clock behind CPS's (or issuing them too short): the renewal
    # it just made is due again at once; the plan says so instead of renewing in a loop.
    fresh = _entry(days_left=20).model_copy(update={"certificate_uploaded_at": NOW - timedelta(hours=1)})
    p = plan([desired(policy=_policy(), **TP)], _observed(), state(www=fresh))
    assert kinds(p) == [] and p.blocked[0].kind == "renew"
    assert "was already inside the renewal window (30d) when it went up" in (p.blocked[0].blocked or "")
