"""Status rows as text (aligned columns), markdown (a table for PRs and issues) or json. A punycode
common name is shown with its Unicode form beside it, except in json."""

from __future__ import annotations

import json
from collections.abc import Callable

from reconciler.idn import with_unicode
from reconciler.observe.status import StatusRow

FORMATS = ("text", "json", "markdown")
HEADERS = ("NAME", "ID", "TYPE", "CN", "SANS", "PENDING", "WAITING FOR", "STAGING", "PRODUCTION", "DRIFT")


def _days(days: int | None, threshold: int, mark: Callable[[str], str]) -> str:
    if days is None:
        return "-"
    text = f"{days}d"
    return mark(text) if days < threshold else text


def _cells(row: StatusRow, threshold: int, mark: Callable[[str], str]) -> list[str]:
    return [row.name, str(row.enrollment_id or "-"), row.type or "-", with_unicode(row.common_name or "-"),
            "-" if row.san_count is None else str(row.san_count), row.pending or "-", row.waiting_for or "-",
            _days(row.staging_days, threshold, mark), _days(row.production_days, threshold, mark), row.drift]


def render_status(rows: list[StatusRow], fmt: str, threshold: int) -> str:
    """Render ``rows``; expiry under ``threshold`` days is marked (``!`` in text, bold in markdown)."""
    if fmt == "json":
        return json.dumps({"threshold_days": threshold, "enrollments": [r.to_data() for r in rows]}, indent=2) + "\n"
    if fmt == "markdown":
        lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
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
    return "\n".join(out) + "\n"
