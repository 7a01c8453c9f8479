"""The challenge ledger: ``state/challenges/<name>.json``, one file per enrollment.

It records which DV challenges were handed to which publisher, for which change, and whether
they were published, checked visible (``verified``), confirmed by a person (``confirmed_at``,
written by ``reconcile challenges NAME --confirm-published``) and cleaned up. The workflow writes
it *before* publishing (so a crash between publish and validation still knows what to clean up)
and the manual publisher uses it to tell "shown to a person in an earlier run" and "confirmed"
from "new". New records (a new change, new values) drop the confirmation. It holds no secrets: challenge values
are public by design (they end up in DNS).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.apply.publishers.base import DNS_01, ChallengeRecord
from reconciler.state.files import atomic_write, make_dirs

LEDGER_VERSION = 1


@dataclass(frozen=True)
class LedgerEntry:
    """What one enrollment's ledger file says."""

    enrollment: str
    enrollment_id: int
    change_id: int
    publisher: str
    records: tuple[ChallengeRecord, ...]
    first_run: str  # run id of the apply that first wrote these exact records
    written_at: str
    published: bool = False
    cleaned_up: bool = False
    verified: bool | None = None  # the propagation check's last verdict (None: not checked)
    confirmed_at: str | None = None  # a person confirmed these records published (manual publisher)

    def same_records(self, records: Sequence[ChallengeRecord]) -> bool:
        return {r.key for r in self.records} == {r.key for r in records}

    def to_data(self) -> dict[str, Any]:
        return {
            "version": LEDGER_VERSION,
            "enrollment": self.enrollment,
            "enrollment_id": self.enrollment_id,
            "change_id": self.change_id,
            "publisher": self.publisher,
            "first_run": self.first_run,
            "written_at": self.written_at,
            "published": self.published,
            "cleaned_up": self.cleaned_up,
            "verified": self.verified,
            "confirmed_at": self.confirmed_at,
            "challenges": [r.to_data() for r in self.records],
        }


class ChallengeLedger:
    """Reads and atomically writes one enrollment's challenge ledger (and its zone snippet)."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name

    @property
    def path(self) -> Path:
        return self.directory / f"{self.name}.json"

    @property
    def zone_path(self) -> Path:
        return self.directory / f"{self.name}.zone"

    def read(self) -> LedgerEntry | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # A damaged ledger only costs a re-publish; never block the workflow on it.
            return None
        return LedgerEntry(
            enrollment=str(data.get("enrollment", self.name)),
            enrollment_id=int(data.get("enrollment_id", 0)),
            change_id=int(data.get("change_id", 0)),
            publisher=str(data.get("publisher", "")),
            records=tuple(ChallengeRecord.from_data(r) for r in data.get("challenges", [])),
            first_run=str(data.get("first_run", "")),
            written_at=str(data.get("written_at", "")),
            published=bool(data.get("published", False)),
            cleaned_up=bool(data.get("cleaned_up", False)),
            verified=None if data.get("verified") is None else bool(data["verified"]),
            confirmed_at=str(data["confirmed_at"]) if data.get("confirmed_at") else None,
        )

    def record(self, *, enrollment_id: int, change_id: int, publisher: str,
               records: Sequence[ChallengeRecord], run_id: str) -> LedgerEntry:
        """Write the records about to be published, keeping ``first_run`` and a person's confirmation
        when nothing changed."""
        previous = self.read()
        first_run, confirmed_at = run_id, None
        if (previous is not None and previous.change_id == change_id and previous.publisher == publisher
                and previous.same_records(records)):
            first_run, confirmed_at = previous.first_run, previous.confirmed_at
        entry = LedgerEntry(
            enrollment=self.name, enrollment_id=enrollment_id, change_id=change_id,
            publisher=publisher, records=tuple(records), first_run=first_run,
            written_at=datetime.now(UTC).isoformat(timespec="seconds"), confirmed_at=confirmed_at,
        )
        self.write(entry)
        return entry

    def confirm(self) -> LedgerEntry | None:
        """Record that a person published the challenges the ledger holds (None: nothing recorded)."""
        entry = self.read()
        if entry is None:
            return None
        return self.mark(entry, confirmed_at=datetime.now(UTC).isoformat(timespec="seconds"))

    def mark(self, entry: LedgerEntry, **changes: Any) -> LedgerEntry:
        updated = replace(entry, **changes)
        self.write(updated)
        return updated

    def write(self, entry: LedgerEntry) -> None:
        make_dirs(self.directory)
        _atomic_write(self.path, json.dumps(entry.to_data(), indent=2, sort_keys=True) + "\n")

    def write_zone(self, records: Sequence[ChallengeRecord], ttl: int, header: str) -> Path:
        """Write a BIND-style snippet with one TXT line per dns-01 record."""
        lines = [f"; {line}" for line in header.splitlines()]
        for record in records:
            if record.type == DNS_01:
                lines.append(f"{record.record_name}\t{ttl}\tIN\tTXT\t{_quote_txt(record.value)}")
        make_dirs(self.directory)
        _atomic_write(self.zone_path, "\n".join(lines) + "\n")
        return self.zone_path


def _quote_txt(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _atomic_write(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))
