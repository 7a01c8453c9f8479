from __future__ import annotations

import pytest

from reconciler.cps.pacing import CPS_ACCOUNT_LIMIT, Pacer, RateLimit

pytestmark = pytest.mark.anyio


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_no_limit_never_waits() -> None:
    t = FakeTime()
    pacer = Pacer(None, sleep=t.sleep, clock=t.clock)
    for _ in range(100):
        assert await pacer.wait() == 0
    assert t.sleeps == []


async def test_bucket_allows_a_burst_then_paces() -> None:
    t = FakeTime()
    pacer = Pacer(RateLimit(per_second=2.0, burst=3), sleep=t.sleep, clock=t.clock)
    waits = [await pacer.wait() for _ in range(6)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([0.5, 0.5, 0.5])


async def test_concurrent_reservations_queue_up() -> None:
    t = FakeTime()
    # the clock does not move between these calls: each caller reserves the next slot
    pacer = Pacer(RateLimit(per_second=1.0, burst=1), sleep=lambda s: _record(t, s), clock=t.clock)
    for _ in range(3):
        await pacer.wait()
    assert t.sleeps == pytest.approx([1.0, 2.0])


async def _record(t: FakeTime, seconds: float) -> None:
    t.sleeps.append(seconds)


async def test_hold_makes_everyone_wait_then_refills_from_its_end() -> None:
    t = FakeTime()
    pacer = Pacer(RateLimit(per_second=1.0, burst=2), sleep=t.sleep, clock=t.clock)
    await pacer.wait()
    await pacer.wait()
    pacer.hold(21.0)
    assert await pacer.wait() == pytest.approx(21.0)


async def test_hold_without_bucket() -> None:
    t = FakeTime()
    pacer = Pacer(None, sleep=t.sleep, clock=t.clock)
    pacer.hold(5.0)
    pacer.hold(2.0)  # a shorter hold never shortens a longer one
    assert await pacer.wait() == pytest.approx(5.0)
    assert await pacer.wait() == 0


async def test_cps_account_limit_stays_under_both_windows() -> None:
    t = FakeTime()
    pacer = Pacer(CPS_ACCOUNT_LIMIT, sleep=t.sleep, clock=t.clock)
    stamps = []
    for _ in range(300):
        await pacer.wait()
        stamps.append(t.now)
    for window, cap in ((2.0, 20), (120.0, 100)):
        worst = max(sum(1 for s in stamps if start <= s < start + window) for start in stamps)
        assert worst <= cap, (window, worst)


def test_rate_limit_validates() -> None:
    with pytest.raises(ValueError):
        RateLimit(per_second=0, burst=1)
