"""The planner: a pure function from (desired, observed, state, options) to a :class:`Plan`.

No I/O, no clock (``options.now`` is stamped in as given). Per spec name, one of:

=====================  =====================================================================
situation              plan
=====================  =====================================================================
spec, no state entry   ``create``; or ``adopt`` when exactly one unbound enrollment with the
                       same CN exists in the contract and duplicates are not allowed (or an
                       interrupted create is resumed); several, or one while duplicates are
                       allowed -> blocked as ambiguous (never a guess)
spec renamed           ``move OLD -> NEW`` (state only; ``reconciler.plan.moves``), then as
                       for a bound spec
spec, bound, differs   ``update`` (new certificate), ``update-network`` (no new certificate),
                       ``update`` with reason ``metadata-only``; a pending change it would
                       cancel -> blocked unless ``--cancel-pending``
immutable field        ``replace``: a new enrollment, driven to deployed, then the old one's
differs                ``delete`` (or ``release`` under ``prevent_destroy``) under the state
                       name ``NAME@ID`` once its successor serves every name
third-party, due       ``renew`` when the certificate is inside ``renewal.before_expiry`` (CPS's
                       clock) or ``renewal.token`` changed, nothing pending (``plan.renewal``)
spec, bound, pending   ``continue`` when apply can give the input the change waits for,
                       ``in-progress`` when it waits on CPS or a person (not a change)
spec, enrollment gone  drift "gone" and ``create`` again
no spec, bound         ``delete`` with ``--allow-delete`` and no ``prevent_destroy``, else
                       blocked; a replaced enrollment with ``prevent_destroy`` -> ``release``
=====================  =====================================================================

The rules for specs without a binding (create, adopt, move) are in ``reconciler.plan.unbound``;
shared state and helpers in ``reconciler.plan.planner_core``. A delete or release never runs
before its *successors* (specs covering any of its names, see
``reconciler.plan.succession``) serve their certificate, and is blocked while one of them is.
A difference while the spec is unchanged since the last apply is drift: listed on its own and
reverted by the update.
"""

from __future__ import annotations

from collections.abc import Sequence

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
from reconciler.plan.planner_core import PlanOptions
from reconciler.plan.renewal import Due, expiry_note, renewal_due, validity
from reconciler.plan.retirement import change_from_state, retirement
from reconciler.plan.safety import select_targets, threshold_violations
from reconciler.plan.succession import retired_name
from reconciler.plan.unbound import UnboundSpecs
from reconciler.state.model import State, StateEntry


def _default_classifier() -> Classifier:
    from reconciler.cps.mapping import field_class

    return field_class


class _Planner(UnboundSpecs):
    """Plans once: ``run()`` returns the plan."""

    # -- entry point -----------------------------------------------------------------------

    def run(self) -> Plan:
        names, warnings = select_targets([*self.desired, *self.state.entries], self.options.targets)
        self.warnings += warnings
        if self.observed is None:
            self.warnings.append("planned WITHOUT refreshing from CPS (--no-refresh): changes made outside "
                                 "reconciler, deleted enrollments and workflow progress are not seen")
        removed: list[tuple[str, StateEntry]] = []
        for name in names:
            desired, entry = self.desired.get(name), self.state.entries.get(name)
            if desired is None:
                assert entry is not None
                if name not in self.moves.sources:
                    removed.append((name, entry))
            elif name in self.moves.moves:
                self._moved(desired, self.moves.moves[name])
            elif name in self.moves.conflicts or name in self.moves.ambiguous:
                self._unsure_rename(desired)
            elif entry is not None and entry.intent is not None and entry.intent.op == "deleting":
                self._recreate(desired, entry)
            elif entry is None or entry.enrollment_id is None:
                self._new(desired, entry)
            else:
                self._existing(desired, entry)
        # Deletes last: whether one may run depends on what its successors were planned to do.
        for name, entry in removed:
            self._removed(name, entry)
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
            created_at=opts.now, commit=opts.revision.commit, refreshed=self.observed is not None,
            state_lineage=self.state.lineage, state_serial=self.state.serial,
            settings=PlanSettings(allow_delete=opts.allow_delete, force=opts.force,
                                  cancel_pending=opts.cancel_pending),
            targets=tuple(sorted(opts.targets)), warnings=tuple(self.warnings),
            actions=tuple(self.actions), blocked=tuple(self.blocked),
            drift=tuple(sorted(self.drift, key=lambda d: d.name)), unmanaged=unmanaged,
            unchanged=tuple(sorted(self.unchanged)), unsafe=tuple(violations),
        )

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
        now = self.observed.now if self.observed is not None else None
        due = renewal_due(d, entry, o, now) if entry is not None and not adopting else None
        if entry is not None:
            expired = expiry_note(d.name, validity(entry, o)[1], now)
            if expired:
                self.warnings.append(expired)
        if changes:
            if not adopting and entry is not None and self._behind(d, o, entry, changes):
                return
            drifted = not adopting and entry is not None and entry.spec_hash == d.spec_hash
            if drifted:
                self.drift.append(Drift(name=d.name, kind="changed", enrollment_id=o.enrollment_id,
                                        changes=changes, message="changed outside reconciler; the update "
                                        "below puts the spec back"))
            self._update(d, o, changes, entry, "drift" if drifted else ("adopted-differs" if adopting else "spec-changed"),
                         due=due)
        elif change is not None:
            if due is not None and change.change_type != "renewal":
                self.warnings.append(f"{d.name}: renewal due ({due.summary}), waits until change {change.change_id} "
                                     f"({change.change_type or 'change'}) is finished")
            self._pending(d, o.enrollment_id, change, entry, self._facts(o))
        elif due is not None:
            self._renew(d, o, due)
        elif not adopting:
            self.unchanged.append(d.name)

    def _renew(self, d: Desired, o: ObservedEnrollment, due: Due,
               changes: tuple[FieldChange, ...] = ()) -> None:
        fields = f"; with {', '.join(c.path for c in changes)}" if changes else ""
        action = self._action(d, d.name, "renew", due.reason, f"enrollment {o.enrollment_id}: {due.summary}{fields}",
                              enrollment_id=o.enrollment_id, changes=changes, new_certificate=True,
                              facts=self._facts(o),
                              steps=("renew: update enrollment with force-renewal (no pending change is cancelled)",
                                     *workflow.certificate_steps(d)))
        if due.problem is not None:
            self._block(action, due.problem, "shorten renewal.before_expiry (30d is usual), or renew with a token")
        else:
            self.actions.append(action)

    def _behind(self, d: Desired, o: ObservedEnrollment, entry: StateEntry, changes: tuple[FieldChange, ...]) -> bool:
        """Block (and say so) an update from a checkout that lacks the commit the enrollment was last
        applied from: CPS holds a newer spec than these, and the update would revert it."""
        revision = self.options.revision
        if entry.spec_hash == d.spec_hash or not revision.lacks(entry.applied_commit) or self.options.force:
            return False
        assert entry.applied_commit is not None and revision.commit is not None
        action = self._action(d, d.name, "update", "behind-last-apply",
                              f"enrollment {o.enrollment_id}: {', '.join(c.path for c in changes)}",
                              enrollment_id=o.enrollment_id, changes=changes, facts=self._facts(o))
        self._block(action, f"{d.name} was last applied from commit {entry.applied_commit[:12]}, which this "
                    f"checkout ({revision.commit[:12]}) does not contain: these specs are behind, and this "
                    "update would revert that apply (the difference is not drift)",
                    f"merge or rebase onto the branch that applied {entry.applied_commit[:12]} (git pull), then "
                    "plan again; --force applies these specs anyway")
        return True

    def _update(self, d: Desired, o: ObservedEnrollment, changes: tuple[FieldChange, ...], entry: StateEntry | None,
                reason: str, *, due: Due | None = None) -> None:
        eid, change, facts = o.enrollment_id, o.active_change, self._facts(o)
        cls = overall_class(changes)
        if due is not None and change is None and cls in ("metadata", "network"):
            self._renew(d, o, due, changes)  # one PUT: the edit, and force-renewal for the new certificate
            return
        if cls == "immutable" and entry is not None and reason != "adopted-differs":
            self._replace(d, o, changes, entry)
            return
        fields = ", ".join(c.path for c in changes)
        kind: ActionKind = "update-network" if cls == "network" else "update"
        if cls == "metadata" and reason != "drift":
            reason = "metadata-only"
        pending = workflow.pending_info(change, d.policy, entry) if change else None
        action = self._action(d, d.name, kind, reason, f"enrollment {eid}: {fields}", enrollment_id=eid,
                              changes=changes, new_certificate=cls == "certificate", pending=pending,
                              facts=facts)
        if cls == "immutable":  # only while adopting: never replace an enrollment not yet ours
            frozen = ", ".join(c.path for c in changes if c.field_class == "immutable")
            self._block(action.model_copy(update={"reason": "immutable-field"}),
                        f"{frozen} of enrollment {eid} differ from the spec and cannot change in place",
                        f"adopt it as it is (`reconcile import --enrollment-id {eid}`), apply, then change the "
                        "spec: the next plan replaces it safely (new enrollment first, old one deleted last)")
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
        change = change_from_state(entry.change)
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

    def _replace(self, d: Desired, o: ObservedEnrollment, changes: tuple[FieldChange, ...],
                 entry: StateEntry) -> None:
        eid = o.enrollment_id
        frozen = ", ".join(c.path for c in changes if c.field_class == "immutable")
        same_cn = o.common_name.lower() == d.common_name.lower() and o.contract_id == d.contract_id
        retired = retired_name(d.name, eid)
        create = "create a new enrollment" + (" (allow-duplicate-cn: the old one keeps the CN until it goes)"
                                              if same_cn else "")
        steps = (f"keep enrollment {eid} in state as {retired} (still serving) until the new one is deployed",
                 create, *workflow.certificate_steps(d), f"then {retired}: see its own action below")
        self.actions.append(self._action(
            d, d.name, "replace", "immutable-field",
            f"enrollment {eid}: {frozen} cannot change in place: a new enrollment replaces it, the old one "
            "goes only after the new one is deployed", enrollment_id=eid, changes=changes, new_certificate=True,
            facts=self._facts(o), allow_duplicate_cn=same_cn or d.policy.allow_duplicate_common_name,
            steps=steps))
        self._retire(retired, entry.model_copy(update={"replaced_by": d.name}), o,
                     entry_name=self.entry_names.get(d.name, d.name))

    # -- state entry without a spec ----------------------------------------------------------

    def _removed(self, name: str, entry: StateEntry) -> None:
        eid = entry.enrollment_id
        gone = self.observed is not None and (eid is None or name in self.observed.gone)
        deleting = entry.intent is not None and entry.intent.op == "deleting"
        if deleting:  # a delete CPS accepted: the enrollment disappears some time later
            what = (f"CPS removed enrollment {eid}" if gone else f"CPS is removing enrollment {eid}")
            self.actions.append(Action(name=name, kind="in-progress", reason="deleting", summary=what,
                                       contract_id=entry.contract_id, common_name=entry.common_name,
                                       enrollment_id=eid, steps=("wait until it is gone", "remove state entry")))
            return
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
        self._retire(name, entry, self.observed.bound.get(name) if self.observed else None)

    def _retire(self, name: str, entry: StateEntry, o: ObservedEnrollment | None, *,
                entry_name: str | None = None) -> None:
        blocked = frozenset(b.name for b in self.blocked)
        action, refusal = retirement(name, entry, o, self.desired.values(), allow_delete=self.options.allow_delete,
                                     cancel_pending=self.options.cancel_pending, blocked=blocked,
                                     entry_name=entry_name)
        if refusal is None:
            self.actions.append(action)
        else:
            self._block(action, *refusal)


def make_plan(desired: Sequence[Desired], observed: Observed | None, state: State, options: PlanOptions,
              *, classify: Classifier | None = None) -> Plan:
    """Plan the changes that bring CPS to ``desired``. ``observed=None`` plans from state alone."""
    return _Planner(desired, observed, state, options, classify or _default_classifier()).run()


__all__ = ["PlanOptions", "make_plan"]
