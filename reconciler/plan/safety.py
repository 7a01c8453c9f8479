"""Mass-change brakes and targeting: rules that refuse or narrow a plan, kept apart from diffing.

Thresholds follow octoDNS: when at least ``min_existing`` enrollments are managed, a plan that
would update (or delete) more than ``update_fraction`` (``delete_fraction``) of them is refused
unless ``--force``. Below ``min_existing`` a single change is a large fraction by nature, so the
brake stays off.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from reconciler.config import SafetyConfig
from reconciler.plan.model import Action


class Thresholds(BaseModel):
    """Fractions of managed enrollments above which a plan needs ``--force``."""

    model_config = ConfigDict(frozen=True)

    update_fraction: float = 0.3
    delete_fraction: float = 0.3
    min_existing: int = 10

    @classmethod
    def from_config(cls, safety: SafetyConfig | None) -> Thresholds:
        """From the ``safety`` section of reconcile.yaml."""
        if safety is None:
            return cls()
        return cls(update_fraction=safety.max_update_fraction, delete_fraction=safety.max_delete_fraction,
                   min_existing=safety.min_managed)


def threshold_violations(actions: Sequence[Action], managed: int, thresholds: Thresholds) -> list[str]:
    """Human reasons the plan exceeds a threshold (empty when it does not)."""
    if managed < thresholds.min_existing or managed == 0:
        return []
    updates = sum(1 for a in actions if a.kind in ("update", "update-network", "replace"))
    deletes = sum(1 for a in actions if a.kind == "delete" and a.enrollment_id is not None)
    out = []
    if updates / managed > thresholds.update_fraction:
        out.append(f"{updates} of {managed} managed enrollments would be updated "
                   f"(more than {thresholds.update_fraction:.0%}); pass --force if that is intended")
    if deletes / managed > thresholds.delete_fraction:
        out.append(f"{deletes} of {managed} managed enrollments would be deleted "
                   f"(more than {thresholds.delete_fraction:.0%}); pass --force if that is intended")
    return out


def select_targets(names: Iterable[str], targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """Names kept by ``--target`` (all when no target) and warnings about the targeting."""
    all_names = sorted(set(names))
    if not targets:
        return all_names, []
    wanted = set(targets)
    warnings = [
        "--target limits this plan to " + ", ".join(sorted(wanted)) + ": other enrollments are not "
        "checked; use it for exceptional cases, not routine changes"
    ]
    unknown = sorted(wanted - set(all_names))
    if unknown:
        warnings.append("--target names no spec or state entry: " + ", ".join(unknown))
    return [n for n in all_names if n in wanted], warnings
