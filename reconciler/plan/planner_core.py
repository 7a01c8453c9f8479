"""What every part of the planner shares: the options, the inputs, what has been planned so far, and
the helpers that make an action or block one. ``reconciler.plan.planner`` holds the rules (its
docstring is the contract); this module holds no decision of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.plan.diff import Classifier
from reconciler.plan.inputs import Desired, Observed, Revision
from reconciler.plan.model import Action, ActionKind, Drift
from reconciler.plan.moves import find_moves
from reconciler.plan.retirement import facts_of
from reconciler.plan.safety import Thresholds
from reconciler.state.model import State


class PlanOptions(BaseModel):
    """What the user asked for on the command line."""

    model_config = ConfigDict(frozen=True)

    targets: tuple[str, ...] = ()
    allow_delete: bool = False
    force: bool = False
    cancel_pending: bool = False
    create_duplicates: tuple[str, ...] = ()
    """Specs to create anew although unbound enrollments with their CN exist (duplicates allowed)."""
    thresholds: Thresholds = Thresholds()
    revision: Revision = Revision()
    """The checkout the specs come from; updates from a checkout behind the last apply are blocked."""
    now: str | None = None
    """Timestamp to stamp on the plan (the planner has no clock)."""


class PlannerCore:
    """The planner's working state (one instance plans once)."""

    def __init__(self, desired: Sequence[Desired], observed: Observed | None, state: State,
                 options: PlanOptions, classify: Classifier) -> None:
        self.desired = {d.name: d for d in desired}
        self.observed = observed
        self.state = state
        self.options = options
        self.classify = classify
        self.actions: list[Action] = []
        self.blocked: list[Action] = []
        self.drift: list[Drift] = []
        self.unchanged: list[str] = []
        self.warnings: list[str] = []
        self.moves = find_moves(self.desired.values(), state)
        self.entry_names: dict[str, str] = {}
        """Spec name -> the state entry its enrollment is bound under until a planned move runs."""
        self.warnings += self.moves.warnings

    # -- helpers ---------------------------------------------------------------------------

    def _action(self, desired: Desired | None, name: str, kind: ActionKind, reason: str, summary: str,
                **extra: Any) -> Action:
        base: dict[str, Any] = {"name": name, "kind": kind, "reason": reason, "summary": summary}
        if name in self.entry_names:
            base["entry_name"] = self.entry_names[name]
        if desired is not None:
            base.update(contract_id=desired.contract_id, common_name=desired.common_name,
                        validation=desired.validation, spec_hash=desired.spec_hash, spec_file=desired.file)
            if kind in ("create", "replace", "update", "renew"):
                base.update(deploy_not_before=desired.policy.deploy_not_before,
                            deploy_not_after=desired.policy.deploy_not_after)
        base.update(extra)
        return Action(**base)

    def _block(self, action: Action, why: str, remedy: str) -> None:
        self.blocked.append(action.model_copy(update={"blocked": why, "remedy": remedy}))

    _facts = staticmethod(facts_of)



__all__ = ["PlanOptions", "PlannerCore"]
