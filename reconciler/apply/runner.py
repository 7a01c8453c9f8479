"""One ``reconcile apply``: get the plan (re-plan, or a saved plan checked for freshness), let the
caller show and confirm it, then execute it. The CLI supplies the I/O callbacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from reconciler.apply import workfiles
from reconciler.apply.context import Report
from reconciler.apply.executor import ApplyOptions, ApplyResult, Executor
from reconciler.apply.journal import StateJournal
from reconciler.apply.publishers import PublisherFactory
from reconciler.apply.thirdparty import pem_fingerprint
from reconciler.apply.upload_step import validity_from
from reconciler.config import Config
from reconciler.cps.client import CpsClient
from reconciler.errors import StalePlan, StateError
from reconciler.plan.desired import desired_from_loaded
from reconciler.plan.model import Plan
from reconciler.plan.pipeline import build_plan
from reconciler.plan.planner import PlanOptions
from reconciler.plan.refresh import refresh
from reconciler.plan.saved import check_fresh, load_saved_plan
from reconciler.spec.loader import LoadedSpecs
from reconciler.state.model import State
from reconciler.state.store import StateStore


@dataclass(frozen=True)
class ApplyRun:
    """How the apply ended: ``applied`` (see ``result``), ``nothing`` to do, or ``cancelled``."""

    status: Literal["applied", "nothing", "cancelled"]
    plan: Plan
    result: ApplyResult | None = None

    @property
    def exit_code(self) -> int:
        if self.status == "cancelled":
            return 1
        return self.result.exit_code if self.result is not None else 0


async def saved_plan(path: Path, specs: LoadedSpecs, store: StateStore, client: CpsClient) -> Plan:
    """A plan file, refused (StalePlan) when state, specs or the CPS facts it rested on moved."""
    plan = load_saved_plan(path)
    state = store.read()
    desired = desired_from_loaded(specs)
    observed = await refresh(client, desired, state, targets=plan.targets) if plan.refreshed else None
    reasons = check_fresh(plan, state, observed, {d.name: d.spec_hash for d in desired})
    if reasons:
        raise StalePlan(reasons)
    return plan


async def run_apply(*, config: Config, specs: LoadedSpecs, store: StateStore, client: CpsClient,
                    plan_file: Path | None, plan_options: PlanOptions, apply_options: ApplyOptions,
                    show: Callable[[Plan], None], confirm: Callable[[Plan], bool],
                    report: Report | None = None, publishers: PublisherFactory | None = None,
                    run_id: str | None = None) -> ApplyRun:
    """Plan (or load), show, confirm (only a fresh plan with changes asks), execute."""
    if plan_file is not None:
        if plan_options.targets:
            raise StateError("--target cannot narrow a saved plan; plan again with --target")
        plan = await saved_plan(plan_file, specs, store, client)
        show(plan)
        plan.ensure_safe()
    else:
        plan = (await build_plan(specs, store.read(), client, plan_options)).plan
        show(plan)
        plan.ensure_safe()
        if plan.has_changes and plan.changes and not confirm(plan):
            return ApplyRun("cancelled", plan)
    journal = StateJournal(store)
    # Under the lock: what killed runs left, and files of entries forgotten without us.
    workfiles.sweep(config.state_path.parent, set(store.read().entries))
    if plan.refreshed:
        await _settle_unchanged(plan, journal, client)
    if not plan.actions:
        return ApplyRun("nothing", plan, ApplyResult(blocked=plan.blocked))
    _record_refresh(store, plan)
    executor = Executor(client=client, journal=journal, specs={s.name: s.spec for s in specs.specs},
                        root=config.root, state_dir=config.state_path.parent, options=apply_options,
                        publishers=publishers, report=report, run_id=run_id)
    try:
        result = await executor.run(plan)
    finally:
        journal.flush()  # the run's last deferred records (also flushed when the lock is released)
    return ApplyRun("applied", plan, result)


async def _settle_unchanged(plan: Plan, journal: StateJournal, client: CpsClient) -> None:
    """Enrollments CPS shows finished and matching while state still records a change or intent
    (a run killed after deployment, before its last write): make state say so. An upload whose
    change then finished without us is recorded when production serves what it sent."""
    for name in plan.unchanged:
        entry = journal.entry(name)
        if entry is None or (entry.change is None and entry.intent is None):
            continue
        intent = entry.intent
        sent = intent.detail.get("fingerprints") if intent is not None and intent.op == "uploading" else None
        if intent is not None and isinstance(sent, dict) and sent and entry.enrollment_id is not None:
            production = await client.get_production_deployment(entry.enrollment_id)
            served = {pem_fingerprint(c.certificate) for c in production.certificates if c.certificate} \
                if production else set()
            if set(sent.values()) <= served:
                journal.uploaded(name, {str(k): str(v) for k, v in sent.items()}, validity_from(intent.detail))
        journal.finished(name, None)


def _record_refresh(store: StateStore, plan: Plan) -> None:
    """Stamp ``last_refresh`` on the entries this run read live from CPS and acts on, in one write.

    Only entries the run goes on to change: an apply leaves the files of every other enrollment
    untouched, so it makes no noise in a GitOps repository, and two branches applying to
    different enrollments change different files (and merge without a conflict).
    """
    if not plan.refreshed:
        return
    now = datetime.now(UTC)
    names = {a.name for a in plan.actions}

    def stamp(state: State) -> State:
        for name in names:
            entry = state.entry(name)
            if entry is not None:
                state = state.with_entry(name, entry.model_copy(update={"last_refresh": now}))
        return state

    store.update(stamp, defer=True)
