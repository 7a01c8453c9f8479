"""Exit codes, in one place (docs/exit-codes.md; its table is generated from ``MEANINGS``)."""

from __future__ import annotations

OK = 0
ERROR = 1
CHANGES = 2  # plan --detailed-exitcode: changes present
WAITING = 3  # apply finished, but some enrollment waits on a person

MEANINGS: dict[int, tuple[str, str]] = {
    OK: ("success; for `plan --detailed-exitcode`, no changes", "all commands"),
    ERROR: ("an error: bad input, CPS refused, a timeout, a blocked action, **a usage error**", "all commands"),
    CHANGES: ("changes present", "only `plan --detailed-exitcode`"),
    WAITING: ("apply finished, but an enrollment waits on a person", "`apply` (and `challenges --check`)"),
}
"""code -> (meaning, who uses it)."""
