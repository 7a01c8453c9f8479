"""Fault and latency rules: matching, counts, phases, seeded probability, admin-body parsing."""

from __future__ import annotations

import pytest

from reconciler.sandbox.faults import FaultPlan, FaultRule, LatencyRule


def test_rule_matches_method_and_path_glob() -> None:
    rule = FaultRule(path="/cps/v2/enrollments/*", method="get")
    assert rule.matches("GET", "/cps/v2/enrollments/10000")
    assert not rule.matches("PUT", "/cps/v2/enrollments/10000")
    assert not rule.matches("GET", "/cps/v2/enrollments")


def test_count_limits_firings_to_the_first_n_matches() -> None:
    plan = FaultPlan([FaultRule(status=503, count=2, path="/a")])
    fired = [plan.pick("GET", "/a", "before") is not None for _ in range(4)]
    assert fired == [True, True, False, False]
    assert plan.pick("GET", "/b", "before") is None


def test_first_matching_rule_wins_then_the_next_takes_over() -> None:
    plan = FaultPlan([FaultRule(status=429, count=1), FaultRule(status=500, count=1)])
    assert [plan.pick("GET", "/x", "before").status for _ in range(2)] == [429, 500]  # type: ignore[union-attr]
    assert plan.pick("GET", "/x", "before") is None


def test_phase_separates_before_and_after_rules_and_truncate_is_always_after() -> None:
    plan = FaultPlan([FaultRule(action="drop", phase="after"), FaultRule(action="truncate", phase="before")])
    assert plan.pick("POST", "/x", "before") is None
    assert plan.pick("POST", "/x", "after").action == "drop"  # type: ignore[union-attr]
    assert plan.pick("POST", "/x", "after").action == "drop"  # type: ignore[union-attr]


def test_probability_is_deterministic_under_a_seed() -> None:
    def run(seed: int) -> list[bool]:
        plan = FaultPlan([FaultRule(probability=0.3)], seed=seed)
        return [plan.pick("GET", "/x", "before") is not None for _ in range(200)]

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first != other
    assert 30 < sum(first) < 90  # about 30% of 200


def test_latency_first_matching_rule_with_seeded_jitter() -> None:
    plan = FaultPlan(latency=[LatencyRule(ms=50, path="/cps/v2/enrollments"), LatencyRule(ms=10, jitter_ms=5)],
                     seed=1)
    assert plan.delay_seconds("GET", "/cps/v2/enrollments") == pytest.approx(0.05)
    delays = [plan.delay_seconds("GET", "/other") for _ in range(20)]
    assert all(0.010 <= d <= 0.015 for d in delays) and len(set(delays)) > 1


def test_admin_body_adds_rules_and_new_latency_wins() -> None:
    plan = FaultPlan(latency=[LatencyRule(ms=10)])
    plan.add({"rules": [{"action": "status", "status": 429, "retry_after": 2, "count": 1}],
              "latency": {"ms": 99}, "seed": 3})
    assert plan.rules[0].retry_after == 2 and plan.seed == 3
    assert plan.delay_seconds("GET", "/x") == pytest.approx(0.099)
    data = plan.to_json()
    assert data["rules"][0]["fired"] == 0 and len(data["latency"]) == 2
    plan.clear()
    assert plan.to_json() == {"rules": [], "latency": [], "seed": 3}


@pytest.mark.parametrize("body", [
    {"rules": [{"action": "explode"}]},
    {"rules": [{"phase": "during"}]},
    {"rules": [{"probability": 2}]},
    {"rules": [{"status": 42}]},
    {"rules": [{"count": -1}]},
    {"rules": [{"bogus": 1}]},
    {"latency": [{"ms": -5}]},
    {"latency": [{"speed": 5}]},
    {"unknown": []},
])
def test_bad_admin_bodies_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultPlan().add(body)
