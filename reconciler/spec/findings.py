"""A rule's verdict about one field of one spec, before the loader gives it a file and line."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NOTICE_WAITING", "Finding"]

NOTICE_WAITING = "waiting for certificate"  # message prefix of the info notice plan/apply rely on


@dataclass(frozen=True)
class Finding:
    """``path`` is the field path inside the spec, e.g. ("sans", 3); severity error|warning|info."""

    path: tuple[str | int, ...]
    message: str
    severity: str = "error"
