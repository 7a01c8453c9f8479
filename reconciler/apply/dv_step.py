"""The ``lets-encrypt-challenges`` input: publish DV challenges, check the world sees them,
acknowledge them, clean up later.

CPS offers this input while the CA validates (``requiredToProceed: false``: CPS also checks on its
own), so it stays in ``allowedInput`` after apply answered it. The step therefore remembers what
it published and acknowledged (in this run, and across runs in the challenge ledger) and only acts
on challenges it has not handled yet.

With the propagation check on (``validation.check``, see ``propagation``), nothing is
acknowledged until every record is visible: when the check's time runs out the enrollment waits
(exit 3) naming each record and server that does not serve it, and the next apply publishes again
(publishers are idempotent) and checks again. For the manual publisher without a person's
confirmation the check looks once instead of waiting: nobody is publishing while apply waits.
"""

from __future__ import annotations

import logging

from reconciler.apply.context import Stop, WorkflowContext
from reconciler.apply.publishers.base import DNS_01, ChallengeRecord, Publisher
from reconciler.apply.publishers.ledger import ChallengeLedger, LedgerEntry
from reconciler.apply.publishers.manual import ManualPublisher
from reconciler.apply.workfiles import challenges_dir
from reconciler.cps.models import Change, DvChallenges
from reconciler.errors import Conflict, NotFound, PublisherError, WriteOutcomeUnknown
from reconciler.spec.models import DvEnrollmentSpec

log = logging.getLogger("reconciler.apply")

LETS_ENCRYPT = "lets-encrypt-challenges"


def challenge_records(name: str, challenges: DvChallenges, method: str) -> list[ChallengeRecord]:
    """Challenges still to answer: ``method`` type, pending, on domains not yet validated."""
    records: list[ChallengeRecord] = []
    for domain in challenges.dv:
        if (domain.validation_status or "").upper() == "VALIDATED" or (domain.status or "").lower() == "valid":
            continue
        for challenge in domain.challenges:
            if challenge.type != method or (challenge.status or "pending").lower() != "pending":
                continue
            full_path = challenge.full_path or ""
            value = challenge.response_body or ""
            if method == DNS_01:
                record_name = full_path if full_path.endswith(".") else full_path + "."
                records.append(ChallengeRecord(enrollment=name, domain=domain.domain or "", type=method,
                                               token=challenge.token or "", value=value,
                                               record_name=record_name, expires=domain.expires))
            else:
                records.append(ChallengeRecord(enrollment=name, domain=domain.domain or "", type=method,
                                               token=challenge.token or "", value=value, path=full_path,
                                               expires=domain.expires))
    return records


class DvStep:
    """Answers ``lets-encrypt-challenges`` for one enrollment; keeps what it did for cleanup."""

    def __init__(self, ctx: WorkflowContext, enrollment_id: int) -> None:
        self.ctx = ctx
        self.enrollment_id = enrollment_id
        self.ledger = ChallengeLedger(challenges_dir(ctx.state_dir), ctx.name)
        self._acknowledged: set[tuple[int, frozenset[tuple[str, str, str, str]]]] = set()
        self._publisher: Publisher | None = None

    @property
    def spec(self) -> DvEnrollmentSpec:
        assert isinstance(self.ctx.spec, DvEnrollmentSpec)
        return self.ctx.spec

    def publisher(self) -> Publisher:
        if self._publisher is None:
            if self.ctx.publisher is None:
                raise self.ctx.fail("no DV challenge publisher configured")
            self._publisher = self.ctx.publisher()
        return self._publisher

    async def answer(self, change_id: int) -> bool:
        """Publish and acknowledge new challenges; True when something was sent to CPS."""
        ctx = self.ctx
        try:
            challenges = await ctx.client.get_dv_challenges(self.enrollment_id, change_id)
        except NotFound:
            return False  # the change moved on: re-read it
        records = challenge_records(ctx.name, challenges, self.spec.validation.method)
        if not records:
            return False  # nothing pending: CPS is checking
        key = (change_id, frozenset(r.key for r in records))
        if key in self._acknowledged:
            return False
        publisher = self.publisher()
        previous = self.ledger.read()
        done_before = (previous is not None and previous.change_id == change_id and previous.published
                       and previous.publisher == publisher.kind and previous.same_records(records)
                       and previous.verified is not False)
        entry = previous
        if not done_before:
            entry = self.ledger.record(enrollment_id=self.enrollment_id, change_id=change_id,
                                       publisher=publisher.kind, records=records, run_id=ctx.run_id)
            ctx.step("publish DV challenges", f"{len(records)} {self.spec.validation.method} via {publisher.kind}")
            result = await publisher.publish(records)
            if not result.ready:
                raise ctx.wait(f"waiting for {result.waiting_for or 'challenge publication'}", result.details)
            entry = self.ledger.mark(entry, published=True)
            ctx.journal.challenges_published(ctx.name, change_id, publisher.kind, records)
            ctx.checkpoint("challenges:published")
        assert entry is not None
        await self._check(records, publisher, entry)
        ctx.step("acknowledge DV challenges")
        try:
            await ctx.client.acknowledge_dv_challenges(self.enrollment_id, change_id)
        except (Conflict, NotFound) as exc:
            # CPS moved on or is busy checking: both mean the acknowledgement is not needed now.
            log.info("%s: DV acknowledgement not taken (%s); re-reading the change", ctx.name, exc)
        except WriteOutcomeUnknown as exc:
            # Maybe not taken: re-read the change; challenges still pending are acknowledged again.
            log.info("%s: DV acknowledgement not confirmed (%s); re-reading the change", ctx.name, exc)
            return False
        self._acknowledged.add(key)
        ctx.checkpoint("challenges:acknowledged")
        return True

    async def _check(self, records: list[ChallengeRecord], publisher: Publisher, entry: LedgerEntry) -> None:
        """Return when every record is visible (or the check is off); else stop the enrollment waiting."""
        ctx = self.ctx
        checker = ctx.checker() if ctx.checker is not None else None
        if checker is None:
            return
        patient = not isinstance(publisher, ManualPublisher) or publisher.confirmed(records)
        timeout = min(checker.timeout_for(records), max(0.0, ctx.time_left)) if patient else 0.0
        what = "nameserver" if self.spec.validation.method == DNS_01 else "URL"
        ctx.step("check DV challenges", f"{len(records)} record(s) on every {what}")
        report = await checker.wait_visible(records, timeout=timeout,
                                            progress=lambda line: ctx.step("check DV challenges", line))
        self.ledger.mark(entry, verified=report.visible)
        if report.visible:
            return
        missing = sorted({c.where.rstrip(".") for c in report.missing})
        waited = f" after {timeout:.0f}s" if timeout >= 1 else ""
        raise ctx.wait(f"waiting for {', '.join(missing)} to be served everywhere{waited} (not acknowledged)",
                       [*report.lines(), f"see each answer: reconcile challenges {ctx.name} --check; "
                        "apply again once they are served (it publishes and checks again)"])

    async def cleanup_if_done(self, change_id: int | None, change: Change | None) -> list[str]:
        """Remove published challenges once CPS no longer needs them; returns notes for people."""
        entry = self.ledger.read()
        if entry is None or not entry.published or entry.cleaned_up:
            return []
        still_needed = (change is not None and entry.change_id == change_id
                        and change.allowed(LETS_ENCRYPT) is not None and change.state != "completed")
        if still_needed:
            return []
        try:
            publisher = self.publisher()
        except (Stop, PublisherError):
            return []
        if publisher.kind != entry.publisher:
            return [f"challenges published by {entry.publisher} are left in place (publisher changed)"]
        try:
            await publisher.cleanup(entry.records)
        except PublisherError as exc:
            log.warning("%s: challenge cleanup failed: %s", self.ctx.name, exc)
            return [f"challenge cleanup failed (will retry next apply): {exc}"]
        self.ledger.mark(entry, cleaned_up=True)
        self.ctx.step("clean up DV challenges")
        if publisher.kind == "manual":
            return [f"domain validation done: the challenge records in {self.ledger.zone_path} may be removed"]
        return []
