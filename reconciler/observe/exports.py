"""Exports for people who publish DV challenges or sign third-party CSRs by hand.

Challenges come live from the enrollment's pending change in CPS; when CPS cannot be read (or
has no pending change) the challenge ledger apply wrote under ``state/challenges/`` is the
fallback, so what was last published stays visible offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reconciler.apply.dv_step import challenge_records
from reconciler.apply.propagation import CheckReport
from reconciler.apply.publishers.base import DNS_01, ChallengeRecord
from reconciler.apply.publishers.ledger import ChallengeLedger
from reconciler.apply.workfiles import challenges_dir, csr_file_name
from reconciler.cps.client import CpsClient
from reconciler.errors import NotFound, ReconcileError
from reconciler.state.model import StateEntry

HTTP_01 = "http-01"
FORMATS = ("table", "json", "zone")


class NothingPending(ReconcileError):
    """The enrollment has no pending change offering what was asked for."""


@dataclass(frozen=True)
class ChallengeExport:
    """Challenges of one enrollment and where they were read from (``cps`` or ``ledger``)."""

    name: str
    source: str
    change_id: int | None
    records: tuple[ChallengeRecord, ...]


async def pending_change(client: CpsClient, entry: StateEntry) -> tuple[int, int] | None:
    """(enrollment id, change id) of the enrollment's current pending change, read live."""
    if entry.enrollment_id is None:
        return None
    enrollment = await client.get_enrollment(entry.enrollment_id)
    ids = enrollment.pending_change_ids
    return (entry.enrollment_id, ids[-1]) if ids else None


async def live_challenges(client: CpsClient, name: str, entry: StateEntry) -> ChallengeExport | None:
    """Both dns-01 and http-01 challenges still pending on the change, or None without a change."""
    found = await pending_change(client, entry)
    if found is None:
        return None
    eid, cid = found
    try:
        challenges = await client.get_dv_challenges(eid, cid)
    except NotFound:  # CPS answers 404 when the change does not wait for DV validation
        return None
    records = challenge_records(name, challenges, DNS_01) + challenge_records(name, challenges, HTTP_01)
    return ChallengeExport(name=name, source="cps", change_id=cid, records=tuple(records))


def ledger_challenges(state_dir: Path, name: str) -> ChallengeExport | None:
    """What apply last recorded for ``name`` (None when it never published anything)."""
    entry = ChallengeLedger(challenges_dir(state_dir), name).read()
    if entry is None:
        return None
    return ChallengeExport(name=name, source="ledger", change_id=entry.change_id, records=entry.records)


def render_challenges(export: ChallengeExport, fmt: str, ttl: int = 60) -> str:
    """``json`` (a list of records), ``zone`` (TXT lines for dns-01) or ``table`` for people."""
    if fmt == "json":
        return json.dumps({"enrollment": export.name, "source": export.source, "change_id": export.change_id,
                           "challenges": [r.to_data() for r in export.records]}, indent=2) + "\n"
    if fmt == "zone":
        lines = [f"; {export.name} change {export.change_id} (from {export.source})"]
        lines += [f'{r.record_name} {ttl} IN TXT "{r.value}"' for r in export.records if r.type == DNS_01]
        return "\n".join(lines) + "\n"
    rows = [("DOMAIN", "TYPE", "WHERE", "VALUE")]
    rows += [(r.domain, r.type, r.record_name or r.path, r.value) for r in export.records]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    out = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}" for row in rows]
    return "\n".join(out) + "\n"


def render_check(report: CheckReport, fmt: str) -> str:
    """``reconcile challenges NAME --check``: one row per record and server (``table``) or ``json``."""
    if fmt == "json":
        return json.dumps({"visible": report.visible, "checks": report.to_data()}, indent=2) + "\n"
    rows = [("RECORD", "EXPECTED", "SERVER", "ANSWER")]
    for check in report.checks:
        where = check.where + "".join(f" -> {v}" for v in check.via)
        if check.problem is not None:
            rows.append((where, check.record.value, "-", check.problem))
            continue
        for i, answer in enumerate(check.answers):
            said = "ok" if answer.ok else answer.describe().removeprefix(f"{answer.server}: ")
            rows.append((where if i == 0 else "", check.record.value if i == 0 else "", answer.server, said))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    out = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows]
    total, seen = len(report.checks), len(report.checks) - len(report.missing)
    out.append(f"{seen} of {total} record(s) visible everywhere" + ("" if report.visible else
               "; apply acknowledges them only once all are"))
    return "\n".join(out) + "\n"


async def export_csrs(client: CpsClient, name: str, entry: StateEntry, out_dir: Path) -> list[Path]:
    """Write ``<name>.<rsa|ecdsa>.csr.pem`` for each CSR of the pending change; the paths written."""
    found = await pending_change(client, entry)
    if found is None:
        raise NothingPending(f"{name}: no pending change in CPS, so no CSR to sign")
    eid, cid = found
    try:
        csrs = await client.get_third_party_csrs(eid, cid)
    except NotFound:  # CPS answers 404 when the change does not wait for a CSR to be signed
        raise NothingPending(f"{name}: change {cid} does not wait for a signed certificate") from None
    if not csrs.csrs:
        raise NothingPending(f"{name}: change {cid} offers no CSR (yet)")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for csr in csrs.csrs:
        algorithm = (csr.key_algorithm or "rsa").lower()
        path = out_dir / csr_file_name(name, algorithm)
        text = csr.csr if csr.csr.endswith("\n") else csr.csr + "\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
