"""Planning a spec that has no bound enrollment: create, adopt (never by guess), a rename (move) or a
spec back while its old enrollment is still being deleted. Part of the planner (see its table);
a mixin so that each module stays one screenful of rules.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.plan import workflow
from reconciler.plan.inputs import Desired, ObservedEnrollment
from reconciler.plan.model import LiveFacts
from reconciler.plan.planner_core import PlannerCore
from reconciler.state.model import StateEntry


class UnboundSpecs(PlannerCore):
    """The rules for specs without a bound enrollment; the bound ones live in the planner."""

    def _compare(self, d: Desired, o: ObservedEnrollment, entry: StateEntry | None, *, adopting: bool) -> None:
        raise NotImplementedError

    def _existing_from_state(self, d: Desired, entry: StateEntry) -> None:
        raise NotImplementedError

    def _removed(self, name: str, entry: StateEntry) -> None:
        raise NotImplementedError

    def _new(self, d: Desired, entry: StateEntry | None) -> None:
        resuming = entry is not None and entry.intent is not None and entry.intent.op == "creating"
        candidates = self.observed.candidates.get(d.name, ()) if self.observed else ()
        facts = LiveFacts(same_cn_ids=tuple(sorted(c.enrollment_id for c in candidates)))
        duplicates_wanted = d.name in self.options.create_duplicates
        if candidates and not (duplicates_wanted and not resuming):
            if len(candidates) > 1 or (d.policy.allow_duplicate_common_name and not resuming):
                self._ambiguous(d, candidates, facts)
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
        duplicate = bool(candidates) or self._cn_held_by_predecessor(d)
        if candidates:
            summary += " (--create-duplicate: enrollments with this CN exist)"
        elif duplicate:
            summary += " (allow-duplicate-cn: the enrollment it replaces holds the CN until then)"
        self.actions.append(self._action(d, d.name, "create", reason, summary, new_certificate=True, facts=facts,
                                         allow_duplicate_cn=duplicate or d.policy.allow_duplicate_common_name,
                                         steps=workflow.create_steps(d)))

    def _recreate(self, d: Desired, entry: StateEntry) -> None:
        """A spec back while its old enrollment is still being deleted: never bind the dying one."""
        eid = entry.enrollment_id
        if self.observed is not None and d.name in self.observed.gone:
            self.actions.append(self._action(d, d.name, "create", "new", f"new {d.validation} enrollment for "
                                             f"{d.common_name} (enrollment {eid} was deleted)", new_certificate=True,
                                             facts=LiveFacts(), steps=workflow.create_steps(d)))
            return
        action = self._action(d, d.name, "create", "being-deleted", f"new enrollment for {d.common_name}",
                              enrollment_id=eid)
        self._block(action, f"enrollment {eid} of {d.name} is still being deleted by CPS; it is never bound again",
                    "apply again once CPS has removed it: a new enrollment is created then")

    def _ambiguous(self, d: Desired, candidates: Sequence[ObservedEnrollment], facts: LiveFacts) -> None:
        ids = ", ".join(str(c.enrollment_id) for c in candidates)
        several = f"enrollments {ids} all have" if len(candidates) > 1 else f"enrollment {ids} has"
        action = self._action(d, d.name, "adopt", "several-same-cn",
                              f"{len(candidates)} unbound enrollment(s) with CN {d.common_name}", facts=facts)
        self._block(action, f"{several} CN {d.common_name} in {d.contract_id} and none is bound in state: "
                    "reconciler will not guess which (if any) is this spec's",
                    f"bind the right one with `reconcile import --contract {d.contract_id} --enrollment-id ID`, "
                    f"or `moved_from:` / `reconcile state mv` if a renamed spec owns it; to create another "
                    f"anyway, plan and apply with --create-duplicate {d.name}")

    def _cn_held_by_predecessor(self, d: Desired) -> bool:
        """Whether an enrollment this spec will replace still holds its CN in its contract."""
        cn = d.common_name.lower()
        return any(e.replaced_by == d.name and e.contract_id == d.contract_id and e.common_name.lower() == cn
                   for e in self.state.entries.values())

    def _unsure_rename(self, d: Desired) -> None:
        if d.name in self.moves.conflicts:
            why, remedy = self.moves.conflicts[d.name], "fix moved_from, or `reconcile state mv` by hand"
        else:
            olds = self.moves.ambiguous[d.name]
            why = (f"it may be a rename of {', '.join(olds)} (same CN {d.common_name} and contract, no spec "
                   "any more)")
            remedy = f"add `moved_from: OLD` to the spec naming which one, or `reconcile state mv OLD {d.name}`"
        action = self._action(d, d.name, "move", "ambiguous-rename", f"where {d.name}'s enrollment is bound")
        self._block(action, why, remedy)

    def _moved(self, d: Desired, old: str) -> None:
        entry = self.state.entries[old]
        o = self.observed.bound.get(old) if self.observed else None
        if self.observed is not None and o is None:  # nothing left to move: the enrollment is gone
            self._removed(old, entry)
            self._new(d, None)
            return
        if d.name in self.moves.detected and self.observed is not None and self.observed.candidates.get(d.name):
            ids = ", ".join(str(c.enrollment_id) for c in self.observed.candidates[d.name])
            action = self._action(d, d.name, "move", "ambiguous-rename", f"{old} -> {d.name}?")
            self._block(action, f"{old} (enrollment {entry.enrollment_id}) looks renamed to {d.name}, but "
                        f"unbound enrollments {ids} have the same CN too",
                        f"add `moved_from: {old}` to the spec if it is the rename, or bind another with "
                        "`reconcile import`")
            return
        reason = "renamed" if d.name in self.moves.detected else "moved-from"
        how = "detected: same CN and contract" if reason == "renamed" else "moved_from"
        self.entry_names[d.name] = old
        self.actions.append(self._action(
            d, d.name, "move", reason, f"{old} -> {d.name}: enrollment {entry.enrollment_id} ({how})",
            enrollment_id=entry.enrollment_id, moved_from=old, entry_name=old,
            facts=self._facts(o) if o else None,
            steps=(f"rename state entry {old} -> {d.name} (nothing changes in CPS)",)))
        self.entry_names[d.name] = old
        if o is None:
            self._existing_from_state(d, entry)
        else:
            self._compare(d, o, entry, adopting=False)


__all__ = ["UnboundSpecs"]
