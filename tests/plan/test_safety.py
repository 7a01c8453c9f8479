"""Thresholds from reconcile.yaml and the threshold arithmetic at its edges."""

from __future__ import annotations

from reconciler.config import SafetyConfig
from reconciler.plan.model import Action
from reconciler.plan.safety import Thresholds, threshold_violations


def _actions(kind: str, n: int) -> list[Action]:
    return [Action(name=f"n{i}", kind=kind, reason="r", summary="", enrollment_id=i) for i in range(n)]  # type: ignore[arg-type]


def test_thresholds_come_from_the_safety_section() -> None:
    t = Thresholds.from_config(SafetyConfig(max_update_fraction=0.5, max_delete_fraction=0.1, min_managed=3))
    assert (t.update_fraction, t.delete_fraction, t.min_existing) == (0.5, 0.1, 3)
    assert Thresholds.from_config(None) == Thresholds()


def test_exactly_at_the_fraction_is_allowed_above_is_not() -> None:
    t = Thresholds()
    assert threshold_violations(_actions("update-network", 3), 10, t) == []
    assert len(threshold_violations(_actions("update", 4), 10, t)) == 1


def test_state_only_deletes_do_not_count() -> None:
    forget = [Action(name=f"g{i}", kind="delete", reason="gone-from-cps", summary="") for i in range(9)]
    assert threshold_violations(forget, 10, Thresholds()) == []
