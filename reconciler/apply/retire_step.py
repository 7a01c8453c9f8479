"""The end of a predecessor: delete (or release) an enrollment once its successors serve its names.

Part of the executor, which runs it for ``delete`` and ``release`` actions (and for an entry whose
delete CPS accepted earlier). The promises, in order:

- it waits (the executor does) for its successors in this run; one that failed, waits on a person,
  timed out or is itself held leaves the enrollment untouched (``held``);
- it reads each successor's deployment from CPS (production; staging for a spec that does not
  wait for deployment) and goes on only when every name handed over is served there;
- a delete intent is on disk before the DELETE; after it, the entry stays (``deleting``) until CPS
  has really removed the enrollment, so no plan can adopt the dying one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reconciler.apply.context import Outcome, OutcomeStatus, PollPolicy, Report
from reconciler.apply.journal import StateJournal
from reconciler.apply.testhooks import checkpoint
from reconciler.cps.client import CpsClient
from reconciler.errors import NotFound
from reconciler.plan.model import Action
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec
from reconciler.x509names import covers, served_names

AnySpec = DvEnrollmentSpec | ThirdPartyEnrollmentSpec


@dataclass
class Retirement:
    """What ending an enrollment needs from the run: CPS, state, the specs and the outcomes so far."""

    client: CpsClient
    journal: StateJournal
    specs: Mapping[str, AnySpec]
    outcomes: Mapping[str, Outcome]
    poll: PollPolicy
    no_wait: bool
    deadline: float
    clock: Callable[[], float]
    report: Report | None = None

    def step(self, name: str, step: str, detail: str = "") -> None:
        if self.report is not None:
            self.report(name, step, detail)

    async def run(self, name: str, action: Action) -> Outcome:
        """Delete (or release) the enrollment ``action`` ends, if and when its successors allow."""
        eid = action.enrollment_id
        if action.reason == "deleting":  # a delete this tool decided on earlier, maybe never sent
            entry = self.journal.entry(name)
            assert eid is not None and entry is not None and entry.intent is not None
            return await self._delete(name, eid, cancel=bool(entry.intent.detail.get("cancel")))
        if eid is None or action.reason == "gone-from-cps":
            self.journal.forget(name)
            return Outcome(name, "done", "forgotten (nothing to delete in CPS)")
        held = self._successors_unfinished(name, action)
        if held is not None:
            return held
        missing = await self._uncovered(action)
        if missing:
            late = [s for s in action.successors if self.outcomes.get(s, Outcome(s, "done", "")).status != "done"]
            status: OutcomeStatus = "held" if late else "failed"
            return Outcome(name, status, f"enrollment {eid} kept: " + "; ".join(missing),
                           ("it goes once every name is served; run apply again",) if late else
                           ("check the successors' deployments; nothing was deleted",))
        if action.kind == "release":
            self.journal.forget(name)
            return Outcome(name, "done", f"released enrollment {eid}: it stays in CPS (prevent_destroy), unmanaged")
        cancel = action.cancels_change is not None
        self.journal.intent(name, "deleting", {"enrollment_id": eid, "cancel": cancel})
        checkpoint(name, "delete:intent")
        return await self._delete(name, eid, cancel=cancel)

    async def _delete(self, name: str, eid: int, *, cancel: bool) -> Outcome:
        self.step(name, "delete enrollment", str(eid))
        try:
            await self.client.delete_enrollment(eid, allow_cancel_pending_changes=cancel)
        except NotFound:
            pass  # already gone: the goal is reached
        checkpoint(name, "delete:posted")
        return await self._removed(name, eid)

    def _successors_unfinished(self, name: str, action: Action) -> Outcome | None:
        """Held when a successor in this run failed, waits on a person or timed out."""
        for successor in action.successors:
            outcome = self.outcomes.get(successor)
            if outcome is not None and outcome.status in ("failed", "waiting", "timeout", "held"):
                return Outcome(name, "held", f"enrollment {action.enrollment_id} left untouched: its successor "
                               f"{successor} is {outcome.status} ({outcome.message})",
                               (f"it goes once {successor} is deployed; run apply again",))
        return None

    async def _uncovered(self, action: Action) -> list[str]:
        """What the successors do not serve yet of the names they take over, read live from CPS."""
        if not action.successors:
            return []
        served: set[str] = set()
        problems: list[str] = []
        for successor in action.successors:
            entry = self.journal.entry(successor)
            spec = self.specs.get(successor)
            if entry is None or entry.enrollment_id is None:
                problems.append(f"{successor} has no enrollment yet")
                continue
            network = "production" if spec is None or spec.wait_for_deployment else "staging"
            fetch = (self.client.get_production_deployment if network == "production"
                     else self.client.get_staging_deployment)
            deployment = await fetch(entry.enrollment_id)
            pems = [c.certificate for c in deployment.certificates if c.certificate] if deployment else []
            served |= served_names(pems)
        names = action.handover or ()
        missing = sorted(n for n in names if not covers(served, n))
        if missing:
            problems.append(f"{', '.join(missing)} not yet served by {', '.join(action.successors)}")
        return problems

    async def _removed(self, name: str, eid: int) -> Outcome:
        """After CPS accepted a delete: wait until the enrollment is gone, then forget its entry. CPS
        takes a deployed enrollment off the network some time later; until then the entry stays
        (intent ``deleting``), so that no plan can offer the dying enrollment for adoption. With
        ``--no-wait`` or when the run's time is up, the next apply finishes the job."""
        delay = self.poll.initial
        while True:
            try:
                await self.client.get_enrollment(eid)
            except NotFound:
                self.journal.forget(name)
                return Outcome(name, "done", f"deleted enrollment {eid}")
            if self.no_wait or self.clock() + delay > self.deadline:
                return Outcome(name, "submitted", f"deleted enrollment {eid}; CPS is taking it off the network "
                               "(the next apply forgets it once it is gone)")
            self.step(name, "wait for CPS to remove the enrollment", str(eid))
            await self.poll.sleep(self.poll.jittered(delay))
            delay = self.poll.next(delay)


__all__ = ["Retirement"]
