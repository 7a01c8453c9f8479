"""CPS's now (reconciler/cps/clock.py): the Date of CPS's answers, at the rate the sandbox declares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.cps.clock import CpsClock


class _Local:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_cps_time_follows_the_date_header_not_the_runner() -> None:
    local = _Local()
    clock = CpsClock(local)
    assert clock.now() == local.now and not clock.known  # nothing heard from CPS yet
    clock.observe("Sat, 05 Dec 2026 12:00:00 GMT")  # CPS is a day ahead of this runner
    assert clock.known and clock.now() == datetime(2026, 12, 5, 12, tzinfo=UTC)
    local.now += timedelta(seconds=30)
    assert clock.now() == datetime(2026, 12, 5, 12, 0, 30, tzinfo=UTC)
    clock.observe("not a date")
    clock.observe(None)
    assert clock.now() == datetime(2026, 12, 5, 12, 0, 30, tzinfo=UTC)  # unreadable answers change nothing


def test_a_sandbox_clock_running_faster_is_followed_at_its_rate() -> None:
    local = _Local()
    clock = CpsClock(local)
    clock.observe("Fri, 04 Dec 2026 12:00:00 GMT", "1000.0")
    local.now += timedelta(seconds=3)
    assert clock.now() == datetime(2026, 12, 4, 12, 50, tzinfo=UTC)
