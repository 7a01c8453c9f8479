"""The planning pipeline in one call: specs + state (+ a client) -> plan, for `plan` and `apply`.

    load specs -> Desired views -> refresh (unless no client) -> make_plan

Kept here, not in the CLI, so that ``apply`` without a plan file plans exactly like ``plan`` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from reconciler.plan.desired import desired_from_loaded
from reconciler.plan.inputs import Desired, Observed
from reconciler.plan.model import Plan
from reconciler.plan.planner import PlanOptions, make_plan
from reconciler.plan.refresh import RefreshClient, refresh
from reconciler.spec.loader import LoadedSpecs
from reconciler.state.model import State

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanResult:
    """A plan and what it was made from (apply executes ``plan`` and checks ``observed``)."""

    plan: Plan
    desired: list[Desired]
    observed: Observed | None


async def build_plan(specs: LoadedSpecs, state: State, client: RefreshClient | None,
                     options: PlanOptions) -> PlanResult:
    """Refresh through ``client`` (None: plan from state alone) and plan."""
    desired = desired_from_loaded(specs)
    observed = None
    if client is not None:
        observed = await refresh(client, desired, state, targets=options.targets)
        log.info("refresh: contracts=%d bound=%d requests=%d", len(observed.contracts), len(observed.bound),
                 observed.requests)
    return PlanResult(make_plan(desired, observed, state, options), desired, observed)
