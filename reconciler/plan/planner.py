"""The planner: a pure function from (desired, observed, state, options) to a :class:`Plan`.

No I/O, no clock (``options.now`` is stamped in as given). Per spec name, one of:

=====================  =====================================================================
situation              plan
=====================  =====================================================================
spec, no state entry   ``create``; or ``adopt`` when an unbound enrollment with the same CN
                       exists in the contract (always when resuming an interrupted create)
spec, bound, differs   ``update`` (new certificate), ``update-network`` (no new certificate),
                       ``update`` with reason ``metadata-only``; an immutable field -> blocked;
                       a pending change it would cancel -> blocked unless ``--cancel-pending``
spec, bound, pending   ``continue`` when apply can give the input the change waits for,
                       ``in-progress`` when it waits on CPS or a person (not a change)
spec, enrollment gone  drift "gone" and ``create`` again
no spec, bound         ``delete`` with ``--allow-delete`` and no ``prevent_destroy``, else blocked
=====================  =====================================================================

A difference while the spec is unchanged since the last apply is drift: listed on its own and
reverted by the update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.plan import workflow
from reconciler.plan.diff import Classifier, diff_views, overall_class
from reconciler.plan.inputs import Desired, Observed, ObservedChange, ObservedEnrollment
from reconciler.plan.model import (
    Action,
    ActionKind,
    Drift,
    FieldChange,
    LiveFacts,
    Plan,
    PlanSettings,
)
from reconciler.plan.safety import Thresholds, select_targets, threshold_violations
from reconciler.state.model import ChangeInFlight, State, StateEntry


class PlanOptions(BaseModel):
    """What the user asked for on the command line."""

    model_config = ConfigDict(frozen=True)

    targets: tuple[str, ...] = ()
    allow_delete: bool = False
    force: bool = False
    cancel_pending: bool = False
    thresholds: Thresholds = Thresholds()
    now: str | None = None
    """Timestamp to stamp on the plan (the planner has no clock)."""


def _default_classifier() -> Classifier:
    from reconciler.cps.mapping import field_class

    return field_class


class _Planner:
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

    # -- entry point -----------------------------------------------------------------------

    def run(self) -> Plan:
        names, warnings = select_targets([*self.desired, *self.state.entries], self.options.targets)
        self.warnings += warnings
        if self.observed is None:
            self.warnings.append("planned WITHOUT refreshing from CPS (--no-refresh): changes made outside "
                                 "reconciler, deleted enrollments and workflow progress are not seen")
        for name in names:
            desired, entry = self.desired.get(name), self.state.entries.get(name)
            if desired is None:
                assert entry is not None
                self._removed(name, entry)
            elif entry is None or entry.enrollment_id is None:
                self._new(desired, entry)
            else:
                self._existing(desired, entry)
        self.actions.sort(key=lambda a: a.sort_key)
        self.blocked.sort(key=lambda a: a.sort_key)
        opts = self.options
        violations = threshold_violations(self.actions, self.state.managed_count(), opts.thresholds)
        if violations and opts.force:
            self.warnings += [f"--force: {v.split('; pass --force')[0]}" for v in violations]
            violations = []
        # A targeted plan speaks only of its targets.
        unmanaged = self.observed.unmanaged if self.observed and not opts.targets else ()
        return Plan(
            created_at=opts.now, refreshed=self.observed is not None,
            state_lineage=self.state.lineage, state_serial=self.state.serial,
            settings=PlanSettings(allow_delete=opts.allow_delete, force=opts.force,
                                  cancel_pending=opts.cancel_pending),
            targets=tuple(sorted(opts.targets)), warnings=tuple(self.warnings),
            actions=tuple(self.actions), blocked=tuple(self.blocked),
            drift=tuple(sorted(self.drift, key=lambda d: d.name)), unmanaged=unmanaged,
            unchanged=tuple(sorted(self.unchanged)), unsafe=tuple(violations),
        )

    # -- helpers ---------------------------------------------------------------------------

    def _action(self, desired: Desired | None, name: str, kind: ActionKind, reason: str, summary: str,
                **extra: Any) -> Action:
        base: dict[str, Any] = {"name": name, "kind": kind, "reason": reason, "summary": summary}
        if desired is not None:
            base.update(contract_id=desired.contract_id, common_name=desired.common_name,
                        validation=desired.validation, spec_hash=desired.spec_hash, spec_file=desired.file)
        base.update(extra)
        return Action(**base)

    def _block(self, action: Action, why: str, remedy: str) -> None:
        self.blocked.append(action.model_copy(update={"blocked": why, "remedy": remedy}))

    @staticmethod
    def _facts(o: ObservedEnrollment) -> LiveFacts:
        change = o.active_change
        return LiveFacts(enrollment_id=o.enrollment_id, enrollment_hash=o.fingerprint,
                         change_id=change.change_id if change else None,
                         change_status=change.status if change else None)

    # -- spec without a bound enrollment -----------------------------------------------------

    def _new(self, d: Desired, entry: StateEntry | None) -> None:
        resuming = entry is not None and entry.intent is not None and entry.intent.op == "creating"
        candidates = self.observed.candidates.get(d.name, ()) if self.observed else ()
        facts = LiveFacts(same_cn_ids=tuple(sorted(c.enrollment_id for c in candidates)))
        if candidates and (resuming or not d.policy.allow_duplicate_common_name):
            if len(candidates) > 1:
                ids = ", ".join(str(c.enrollment_id) for c in candidates)
                action = self._action(d, d.name, "adopt", "several-same-cn",
                                      f"{len(candidates)} enrollments with CN {d.common_name} exist", facts=facts)
                self._block(action, f"enrollments {ids} in {d.contract_id} all have CN {d.common_name}",
                            "adopt one with `reconcile import --enrollment-id ID`, or set "
                            "allow_duplicate_common_name: true to create another")
                return
            found = candidates[0]
            reason = "resume-create" if resuming else "adopt-existing"
            why = ("an interrupted create left enrollment" if resuming else "existing enrollment")
            self.actions.append(self._action(
                d, d.name, "adopt", reason, f"{why} {found.enrollment_id} has CN {d.common_name}: bind it",
                enrollment_id=found.enrollment_id, facts=self._facts(found),
                steps=(f"record enrollment {found.enrollment_id} in state",)))
            self._compare(d, found, entry, adopting=True)
            return
        if resuming and self.observed is None:
            self.warnings.append(f"{d.name}: a create was interrupted; without a refresh apply will look "
                                 "the enrollment up by CN before creating")
        reason = "resume-create" if resuming else "new"
        summary = f"new {d.validation} enrollment for {d.common_name}"
        if candidates:
            summary += " (allow_duplicate_common_name: another with this CN exists)"
        self.actions.append(self._action(d, d.name, "create", reason, summary, new_certificate=True,
                                         facts=facts, steps=workflow.create_steps(d)))

    # -- spec bound to an enrollment ---------------------------------------------------------

    def _existing(self, d: Desired, entry: StateEntry) -> None:
        if self.observed is None:
            self._existing_from_state(d, entry)
            return
        o = self.observed.bound.get(d.name)
        if o is None:
            eid = self.observed.gone.get(d.name, entry.enrollment_id)
            self.drift.append(Drift(name=d.name, kind="gone", enrollment_id=eid,
                                    message=f"enrollment {eid} no longer exists in CPS"))
            self.actions.append(self._action(
                d, d.name, "create", "enrollment-gone", f"enrollment {eid} was deleted outside reconciler: "
                "create it again", new_certificate=True, facts=LiveFacts(), steps=workflow.create_steps(d)))
            return
        self._compare(d, o, entry, adopting=False)

    def _compare(self, d: Desired, o: ObservedEnrollment, entry: StateEntry | None, *, adopting: bool) -> None:
        changes = diff_views(o.view, d.view, self.classify)
        change = o.active_change
        if changes:
            drifted = not adopting and entry is not None and entry.spec_hash == d.spec_hash
            if drifted:
                self.drift.append(Drift(name=d.name, kind="changed", enrollment_id=o.enrollment_id,
                                        changes=changes, message="changed outside reconciler; the update "
                                        "below puts the spec back"))
            self._update(d, o.enrollment_id, changes, change, self._facts(o), entry,
                         "drift" if drifted else ("adopted-differs" if adopting else "spec-changed"))
        elif change is not None:
            self._pending(d, o.enrollment_id, change, entry, self._facts(o))
        elif not adopting:
            self.unchanged.append(d.name)

    def _update(self, d: Desired, eid: int, changes: tuple[FieldChange, ...], change: ObservedChange | None,
                facts: LiveFacts | None, entry: StateEntry | None, reason: str) -> None:
        cls = overall_class(changes)
        fields = ", ".join(c.path for c in changes)
        kind: ActionKind = "update-network" if cls == "network" else "update"
        if cls == "metadata" and reason != "drift":
            reason = "metadata-only"
        pending = workflow.pending_info(change, d.policy, entry) if change else None
        action = self._action(d, d.name, kind, reason, f"enrollment {eid}: {fields}", enrollment_id=eid,
                              changes=changes, new_certificate=cls == "certificate", pending=pending,
                              facts=facts)
        if cls == "immutable":
            frozen = ", ".join(c.path for c in changes if c.field_class == "immutable")
            self._block(action.model_copy(update={"reason": "immutable-field"}),
                        f"{frozen} cannot change on an existing enrollment: CPS needs a new one",
                        "to replace it, give the spec a new name (a new enrollment is created) and remove "
                        "the old one with --allow-delete; reconciler does not replace in place")
            return
        cancels = None
        if change is not None:
            if not self.options.cancel_pending:
                self._block(action, f"updating cancels pending change {change.change_id} "
                            f"({change.change_type or 'change'}, {change.status or change.state})",
                            "wait for the change to finish, or pass --cancel-pending to cancel it")
                return
            cancels = change.change_id
        steps = workflow.update_steps(d, kind, cls == "metadata", cancels, changes)
        self.actions.append(action.model_copy(update={"steps": steps, "cancels_change": cancels}))

    def _pending(self, d: Desired, eid: int, change: ObservedChange, entry: StateEntry | None,
                 facts: LiveFacts | None) -> None:
        info = workflow.pending_info(change, d.policy, entry)
        what = change.status or change.state or "pending"
        if change.state == "error":
            action = self._action(d, d.name, "continue", "change-failed", f"change {change.change_id}: {what}",
                                  enrollment_id=eid, pending=info, facts=facts)
            self._block(action, workflow.person_hint(change, d.policy, d.name), "cancel the failed change")
        elif info.waits_on == "apply":
            inputs = ", ".join(change.allowed_input)
            self.actions.append(self._action(
                d, d.name, "continue", "awaiting-input", f"change {change.change_id} waits for {inputs}",
                enrollment_id=eid, pending=info, facts=facts,
                steps=workflow.continue_steps(change, d.policy, entry)))
        else:
            waits = (workflow.person_hint(change, d.policy, d.name) if info.waits_on == "person"
                     else f"CPS is working ({what})")
            reason = "waiting-on-person" if info.waits_on == "person" else "waiting-on-cps"
            self.actions.append(self._action(
                d, d.name, "in-progress", reason, f"change {change.change_id}: {waits}", enrollment_id=eid,
                pending=info, facts=facts, steps=workflow.waiting_steps(change, d.policy)))

    def _existing_from_state(self, d: Desired, entry: StateEntry) -> None:
        eid = entry.enrollment_id
        assert eid is not None
        change = _change_from_state(entry.change)
        if entry.spec_hash != d.spec_hash:
            if change is not None and not self.options.cancel_pending:
                action = self._action(d, d.name, "update", "spec-changed", f"enrollment {eid}: spec changed",
                                      enrollment_id=eid)
                self._block(action, f"a change ({change.change_id}) was in flight at the last apply",
                            "refresh to see if it finished, or pass --cancel-pending")
                return
            self.actions.append(self._action(
                d, d.name, "update", "spec-changed",
                f"enrollment {eid}: spec changed since the last apply (fields unknown without refresh)",
                enrollment_id=eid, cancels_change=change.change_id if change else None,
                steps=("update enrollment (apply re-reads CPS and classifies the change)",)))
        elif change is not None:
            self._pending(d, eid, change, entry, None)
        else:
            self.unchanged.append(d.name)

    # -- state entry without a spec ----------------------------------------------------------

    def _removed(self, name: str, entry: StateEntry) -> None:
        eid = entry.enrollment_id
        gone = self.observed is not None and (eid is None or name in self.observed.gone)
        if gone:
            summary = ("no enrollment was created (interrupted create); forget it" if eid is None
                       else f"enrollment {eid} is already gone from CPS; forget it")
            if eid is not None:
                self.drift.append(Drift(name=name, kind="gone", enrollment_id=eid,
                                        message=f"enrollment {eid} was deleted outside reconciler"))
            self.actions.append(Action(name=name, kind="delete", reason="gone-from-cps", summary=summary,
                                       contract_id=entry.contract_id, common_name=entry.common_name,
                                       steps=("remove state entry",)))
            return
        o = self.observed.bound.get(name) if self.observed else None
        change = o.active_change if o else _change_from_state(entry.change)
        cancels = change.change_id if change is not None else None
        steps = ([f"cancel pending change {cancels}"] if cancels is not None else []) + [
            f"delete enrollment {eid} (its certificate leaves the network)", "remove state entry"]
        action = Action(name=name, kind="delete", reason="removed-from-specs",
                        summary=f"enrollment {eid} ({entry.common_name}) is no longer in the specs",
                        contract_id=entry.contract_id, common_name=entry.common_name, enrollment_id=eid,
                        facts=self._facts(o) if o else None, cancels_change=cancels, steps=tuple(steps))
        if entry.prevent_destroy:
            self._block(action, "prevent_destroy was set on the last applied spec",
                        "restore the spec with prevent_destroy: false and apply, then remove it")
        elif not self.options.allow_delete:
            self._block(action, "deletes are off by default",
                        "pass --allow-delete to delete it, or restore its spec to keep managing it")
        elif change is not None and not self.options.cancel_pending:
            self._block(action.model_copy(update={"cancels_change": None}),
                        f"deleting cancels pending change {change.change_id} ({change.status or change.state})",
                        "wait for the change to finish, or pass --cancel-pending")
        else:
            self.actions.append(action)


def _change_from_state(change: ChangeInFlight | None) -> ObservedChange | None:
    if change is None:
        return None
    return ObservedChange(change_id=change.change_id, change_type=change.change_type, status=change.status,
                          state=change.state, allowed_input=change.waiting_for)


def make_plan(desired: Sequence[Desired], observed: Observed | None, state: State, options: PlanOptions,
              *, classify: Classifier | None = None) -> Plan:
    """Plan the changes that bring CPS to ``desired``. ``observed=None`` plans from state alone."""
    return _Planner(desired, observed, state, options, classify or _default_classifier()).run()


__all__ = ["PlanOptions", "make_plan"]
