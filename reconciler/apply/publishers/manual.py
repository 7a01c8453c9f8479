"""The manual publisher: a person publishes the challenges; the tool writes them down.

The first apply that sees a set of challenges writes them to the ledger
(``state/challenges/<name>.json``) and, for dns-01, a BIND-style zone snippet next to it, then
stops the enrollment "waiting for DNS publication" (exit code 3). The next apply that sees the
*same* challenges takes that run as the person's confirmation that they are published, and lets
the workflow acknowledge them to CPS (which then checks them itself). New or changed challenges
start the cycle again.
"""

from __future__ import annotations

from typing import ClassVar

from reconciler.apply.publishers.base import DNS_01, ChallengeRecord, Publisher, PublishResult
from reconciler.apply.publishers.ledger import ChallengeLedger


class ManualPublisher(Publisher):
    """Writes challenges for a person and waits for the next run; see the module docstring."""

    kind: ClassVar[str] = "manual"

    def __init__(self, ledger: ChallengeLedger, run_id: str, ttl: int = 60) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self.ttl = ttl

    async def _publish(self, records: list[ChallengeRecord]) -> PublishResult:
        entry = self.ledger.read()
        if entry is not None and entry.same_records(records) and entry.first_run != self.run_id:
            return PublishResult(ready=True, details=[f"confirmed by this run: {self.ledger.path}"])
        details = [f"challenges written to {self.ledger.path}"]
        if any(r.type == DNS_01 for r in records):
            header = (f"DV challenges for {self.ledger.name}; publish these TXT records, "
                      "then run `reconcile apply` again")
            zone = self.ledger.write_zone(records, self.ttl, header)
            details.append(f"zone snippet: {zone}")
        details.extend(_describe(r) for r in records)
        kind = "DNS" if all(r.type == DNS_01 for r in records) else "HTTP token"
        return PublishResult(ready=False, waiting_for=f"{kind} publication of {len(records)} challenge(s)",
                             details=details)


def _describe(record: ChallengeRecord) -> str:
    if record.type == DNS_01:
        return f"{record.record_name} TXT {record.value}"
    return f"{record.path} -> {record.value}"
