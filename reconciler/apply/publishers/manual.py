"""The manual publisher: a person publishes the challenges; the tool writes them down.

The first apply that sees a set of challenges writes them to the ledger
(``state/challenges/<name>.json``) and, for dns-01, a BIND-style zone snippet next to it, then
stops the enrollment "waiting for DNS publication" (exit code 3). What lets a later apply go on
depends on whether the propagation check (``validation.check``) is on:

| check | a later apply with the *same* challenges |
|---|---|
| on | is ready; the workflow then acknowledges only what every nameserver serves (one look; a person who confirmed gets the full ``dns_check.timeout``) |
| off | is ready only once a person ran ``reconcile challenges NAME --confirm-published`` (the ledger's ``confirmed_at``); otherwise it keeps waiting |

A later run alone is never taken as "published": in CI every push runs apply, and acknowledging
what nobody published costs a failed validation. New or changed challenges start the cycle again
(and drop an earlier confirmation).
"""

from __future__ import annotations

from typing import ClassVar

from reconciler.apply.publishers.base import DNS_01, ChallengeRecord, Publisher, PublishResult
from reconciler.apply.publishers.ledger import ChallengeLedger


class ManualPublisher(Publisher):
    """Writes challenges for a person and waits for them; see the module docstring."""

    kind: ClassVar[str] = "manual"

    def __init__(self, ledger: ChallengeLedger, run_id: str, ttl: int = 60, *,
                 confirmation_required: bool = True) -> None:
        """``confirmation_required``: True when no propagation check will look (check off)."""
        self.ledger = ledger
        self.run_id = run_id
        self.ttl = ttl
        self.confirmation_required = confirmation_required

    def confirmed(self, records: list[ChallengeRecord]) -> bool:
        entry = self.ledger.read()
        return entry is not None and entry.same_records(records) and entry.confirmed_at is not None

    async def _publish(self, records: list[ChallengeRecord]) -> PublishResult:
        entry = self.ledger.read()
        if entry is not None and entry.same_records(records):
            if entry.confirmed_at is not None:
                return PublishResult(ready=True, details=[f"confirmed published at {entry.confirmed_at}"])
            if not self.confirmation_required and entry.first_run != self.run_id:
                return PublishResult(ready=True, details=["shown in an earlier run; the check decides"])
        details = [f"challenges written to {self.ledger.path}"]
        if any(r.type == DNS_01 for r in records):
            header = (f"DV challenges for {self.ledger.name}; publish these TXT records, then "
                      + self._next_step())
            zone = self.ledger.write_zone(records, self.ttl, header)
            details.append(f"zone snippet: {zone}")
        details.extend(_describe(r) for r in records)
        details.append("once published, " + self._next_step())
        kind = "DNS" if all(r.type == DNS_01 for r in records) else "HTTP token"
        return PublishResult(ready=False, waiting_for=f"{kind} publication of {len(records)} challenge(s)",
                             details=details)

    def _next_step(self) -> str:
        confirm = f"`reconcile challenges {self.ledger.name} --confirm-published`"
        if self.confirmation_required:
            return f"run {confirm} (in CI: commit {self.ledger.path} it updates), then `reconcile apply`"
        return ("run `reconcile apply` again: it acknowledges them once every nameserver serves them "
                f"({confirm} first makes it wait for propagation)")


def _describe(record: ChallengeRecord) -> str:
    if record.type == DNS_01:
        return f"{record.record_name} TXT {record.value}"
    return f"{record.path} -> {record.value}"
