"""CPS's now: the time on CPS's clock, learnt from the ``Date`` header of its answers.

Renewal windows and expiry are judged by CPS's clock, not the runner's: a CI runner whose clock
is off by a day must not renew a day early or late, and the sandbox's virtual clock (moved with
``/_sandbox/advance``) is CPS's time for whoever talks to it. Every answer the session reads
updates the offset between CPS's clock and this machine's; ``now()`` is this machine's time plus
that offset (``Date`` has one-second resolution, which is plenty for windows counted in days).

The sandbox runs its clock faster than real time when asked; it says so in ``X-Sandbox-Clock-Rate``
(virtual seconds per real second), and ``now()`` then moves at that rate since the last answer.
Real CPS sends no such header: its clock runs at one second per second.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime


def _local() -> datetime:
    return datetime.now(UTC)


RATE_HEADER = "X-Sandbox-Clock-Rate"


class CpsClock:
    """CPS's time at the last answer with a ``Date``, and how fast that clock runs."""

    def __init__(self, local: Callable[[], datetime] = _local) -> None:
        self._local = local
        self._seen: tuple[datetime, datetime, float] | None = None
        """(CPS's time, this machine's time, CPS seconds per real second) at the last answer."""

    def observe(self, date_header: str | None, rate_header: str | None = None) -> None:
        """An answer arrived with these headers (ignored when absent or unreadable)."""
        if not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header)
            rate = float(rate_header) if rate_header else 1.0
        except (TypeError, ValueError, IndexError):
            return
        if server.tzinfo is None:
            server = server.replace(tzinfo=UTC)
        self._seen = (server, self._local(), rate if rate >= 0 else 1.0)

    @property
    def known(self) -> bool:
        """Whether an answer with a usable ``Date`` has been seen."""
        return self._seen is not None

    def now(self) -> datetime:
        """CPS's time now (this machine's until an answer said otherwise)."""
        local = self._local()
        if self._seen is None:
            return local
        server, at, rate = self._seen
        return server + timedelta(seconds=(local - at).total_seconds() * rate)


__all__ = ["RATE_HEADER", "CpsClock"]
