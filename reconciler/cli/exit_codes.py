"""Exit codes, in one place (see README "Exit codes")."""

from __future__ import annotations

OK = 0
ERROR = 1
CHANGES = 2  # plan --detailed-exitcode: changes present
WAITING = 3  # apply finished, but some enrollment waits on a person
