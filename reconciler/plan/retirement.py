"""The end of an enrollment: the ``delete`` (or ``release``) that takes it out of reconciler's hands,
planned so that it never leaves a name without a certificate.

A pure function of the state entry, the enrollment as refreshed, the specs and the consent flags.
Gates, in order (the first that applies blocks the action):

=============================================  ================================================
situation                                      result
=============================================  ================================================
replaced (``replaced_by``) + ``prevent_destroy``  ``release``: forgotten in state once the
                                               successor serves; the enrollment stays in CPS
``prevent_destroy`` (not replaced)             blocked
no ``--allow-delete``                          blocked ("deletes are off by default")
a pending change, no ``--cancel-pending``      blocked
a successor blocked in this plan               blocked: its names would be left uncovered
otherwise                                      ``delete`` after its successors
=============================================  ================================================
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.plan.inputs import Desired, ObservedChange, ObservedEnrollment
from reconciler.plan.model import Action, LiveFacts
from reconciler.plan.succession import succession, view_names
from reconciler.state.model import ChangeInFlight, StateEntry

Refusal = tuple[str, str]
"""Why an action is blocked, and how to allow it."""


def change_from_state(change: ChangeInFlight | None) -> ObservedChange | None:
    """The change state last saw in flight, as the planner reads changes."""
    if change is None:
        return None
    return ObservedChange(change_id=change.change_id, change_type=change.change_type, status=change.status,
                          state=change.state, allowed_input=change.waiting_for)


def facts_of(o: ObservedEnrollment) -> LiveFacts:
    """What a saved plan rests on for one enrollment (apply refuses the plan if any moved)."""
    change = o.active_change
    return LiveFacts(enrollment_id=o.enrollment_id, enrollment_hash=o.fingerprint,
                     change_id=change.change_id if change else None,
                     change_status=change.status if change else None)


def _steps(eid: int | None, successors: tuple[str, ...], covered: Iterable[str], dropped: Iterable[str],
           release: bool, cancels: int | None) -> tuple[str, ...]:
    steps: list[str] = []
    if successors:
        names = ", ".join(sorted(covered)) or "its names"
        steps.append(f"wait until {', '.join(successors)} serve(s) {names} from a deployed certificate")
    if release:
        return (*steps, f"forget enrollment {eid} in state (prevent_destroy: it stays in CPS, unmanaged)")
    if cancels is not None:
        steps.append(f"cancel pending change {cancels}")
    gone = ", ".join(sorted(dropped))
    return (*steps, f"delete enrollment {eid}" + (f"; {gone} leave(s) the network" if gone else ""),
            "remove state entry")


def retirement(name: str, entry: StateEntry, o: ObservedEnrollment | None, desired: Iterable[Desired], *,
               allow_delete: bool, cancel_pending: bool, blocked: frozenset[str],
               entry_name: str | None = None) -> tuple[Action, Refusal | None]:
    """The action ending the enrollment ``entry`` binds under ``name``, and its refusal if blocked
    (``blocked``: spec names with a blocked action in this plan)."""
    eid = entry.enrollment_id
    names = view_names(o.view) if o is not None else frozenset({entry.common_name.lower()})
    heirs = succession(names, desired, replaced_by=entry.replaced_by)
    change = o.active_change if o else change_from_state(entry.change)
    release = entry.replaced_by is not None and entry.prevent_destroy
    cancels = change.change_id if change is not None and not release else None
    if entry.replaced_by is not None:
        summary = (f"enrollment {eid} ({entry.common_name}) is replaced by {entry.replaced_by}: "
                   f"{'released' if release else 'deleted'} once {entry.replaced_by} is deployed")
    else:
        summary = f"enrollment {eid} ({entry.common_name}) is no longer in the specs"
        if heirs.successors:
            summary += f"; deleted after {', '.join(heirs.successors)} (which take(s) over its names)"
    action = Action(name=name, kind="release" if release else "delete",
                    reason="replaced" if entry.replaced_by is not None else "removed-from-specs",
                    summary=summary, contract_id=entry.contract_id, common_name=entry.common_name,
                    enrollment_id=eid, facts=facts_of(o) if o else None, cancels_change=cancels,
                    successors=heirs.successors, handover=tuple(sorted(heirs.covered)),
                    dropped_names=tuple(sorted(heirs.dropped)), entry_name=entry_name,
                    steps=_steps(eid, heirs.successors, heirs.covered, heirs.dropped, release, cancels))
    stuck = [s for s in heirs.successors if s in blocked]
    if not release and entry.prevent_destroy:
        return action, ("prevent_destroy was set on the last applied spec",
                        "restore the spec with prevent_destroy: false and apply, then remove it")
    if not release and not allow_delete:
        remedy = ("pass --allow-delete to delete it, or restore its spec to keep managing it"
                  if entry.replaced_by is None else
                  f"pass --allow-delete to delete it once {entry.replaced_by} is deployed, or "
                  f"`reconcile state rm {name}` to keep it in CPS unmanaged")
        return action, ("deletes are off by default", remedy)
    if change is not None and cancels is not None and not cancel_pending:
        return (action.model_copy(update={"cancels_change": None}),
                (f"deleting cancels pending change {cancels} ({change.status or change.state})",
                 "wait for the change to finish, or pass --cancel-pending"))
    if stuck:
        return action, (f"its successor(s) {', '.join(stuck)} are blocked: its names would be left without a "
                        "certificate", f"unblock {', '.join(stuck)} first (see above)")
    return action, None


__all__ = ["Refusal", "change_from_state", "facts_of", "retirement"]
