"""Status rows as text (aligned columns), markdown (a table for PRs and issues) or json (the html
timeline page is ``status_html``). A punycode common name is shown with its Unicode form
beside it, except in json.

Expired certificates are loud in every format: the days cell says ``EXPIRED``, and a banner names
each one (after the table in text, before it in markdown, ``expired`` at the top of json).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from reconciler.idn import with_unicode
from reconciler.observe.status import StatusRow

FORMATS = ("text", "json", "markdown")
HEADERS = ("NAME", "ID", "TYPE", "CN", "SANS", "PENDING", "WAITING FOR", "STAGING", "PRODUCTION", "NEXT RENEWAL",
           "DRIFT")
OUTAGE = "an expired production certificate is an outage"


def _days(days: int | None, expired: bool, threshold: int, mark: Callable[[str], str]) -> str:
    if days is None:
        return "-"
    text = f"{days}d EXPIRED" if expired else f"{days}d"
    return mark(text) if days < threshold or expired else text


def renewal_text(row: StatusRow) -> str:
    """``2027-01-10 (cps)``, ``2027-01-10 (window 30d)``, ``due (window 30d)``, ``renewing``, or
    ``none: NOT RENEWING`` for a third-party certificate nothing will renew; ``cps`` or ``window 30d``
    alone when there is no date yet (nothing deployed)."""
    if row.pending is not None and row.pending.startswith("renewal "):
        return "renewing"
    if row.renewal is None:
        return "-"
    if row.renewal == "none":
        return "none: NOT RENEWING"
    how = "cps" if row.renewal == "cps" else f"window {row.renewal_window_days:g}d"
    if row.next_renewal is None:
        return how  # nothing deployed yet (or CPS gave no date)
    if row.renewal == "window" and row.renewal_days is not None and row.renewal_days <= 0:
        return f"due ({how})"
    return f"{row.next_renewal.date().isoformat()} ({how})"


def _cells(row: StatusRow, threshold: int, mark: Callable[[str], str]) -> list[str]:
    return [row.name, str(row.enrollment_id or "-"), row.type or "-", with_unicode(row.common_name or "-"),
            "-" if row.san_count is None else str(row.san_count), row.pending or "-", row.waiting_for or "-",
            _days(row.staging_days, "staging" in row.expired, threshold, mark),
            _days(row.production_days, "production" in row.expired, threshold, mark), renewal_text(row), row.drift]


def expired_lines(rows: list[StatusRow]) -> list[str]:
    """One sentence per expired certificate, production first."""
    lines = []
    for network in ("production", "staging"):
        for row in rows:
            if network in row.expired:
                expiry = row.production_expiry if network == "production" else row.staging_expiry
                assert expiry is not None
                tail = f": {OUTAGE}" if network == "production" else ""
                lines.append(f"EXPIRED: {row.name} ({row.common_name or '-'}) {network} certificate expired "
                             f"{expiry.strftime('%Y-%m-%d %H:%M UTC')}{tail}")
    return lines


def render_status(rows: list[StatusRow], fmt: str, threshold: int, *, now: datetime | None = None) -> str:
    """Render ``rows`` as text, markdown or json (html: ``status_html.render_html``); expiry under
    ``threshold`` days is marked (``!`` in text, bold in markdown). ``now``, the clock the rows were
    judged by, is stated in json."""
    alarms = expired_lines(rows)
    if fmt == "json":
        data = {"threshold_days": threshold, "now": now.isoformat() if now else None,
                "expired": sorted({r.name for r in rows if r.expired}),
                "enrollments": [r.to_data() for r in rows]}
        return json.dumps(data, indent=2) + "\n"
    if fmt == "markdown":
        lines = [f"> :rotating_light: **{line}**" for line in alarms]
        lines += [""] if alarms else []
        lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        for row in rows:
            cells = [c.replace("|", "\\|") for c in _cells(row, threshold, lambda t: f"**{t}** :warning:")]
            lines.append("| " + " | ".join(cells) + " |")
        if not rows:
            lines.append("\nNo enrollments in specs or state.")
        return "\n".join(lines) + "\n"
    table = [list(HEADERS)] + [_cells(r, threshold, lambda t: t + "!") for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    out = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in table]
    if not rows:
        out.append("No enrollments in specs or state.")
    out += alarms
    return "\n".join(out) + "\n"
