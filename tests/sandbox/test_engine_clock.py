"""The virtual clock: scaled real time plus explicit jumps, and a restart that resumes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.sandbox.clock import VirtualClock

START = datetime(2030, 1, 1, tzinfo=UTC)


def test_frozen_clock_moves_only_when_advanced() -> None:
    clock = VirtualClock(speed=0, start=START)
    assert clock.now() == START
    clock.advance(90)
    assert clock.now() == START + timedelta(seconds=90)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_speed_scales_real_time() -> None:
    clock = VirtualClock(speed=1000, start=START)
    time.sleep(0.02)
    elapsed = (clock.now() - START).total_seconds()
    assert 15 <= elapsed < 1000  # 20 ms real is about 20 s virtual
    assert clock.now().tzinfo is not None


def test_json_round_trip_resumes_at_the_saved_time() -> None:
    clock = VirtualClock(speed=0, start=START)
    clock.advance(3600)
    saved = clock.to_json()
    again = VirtualClock.from_json(saved)
    assert again.now() == START + timedelta(hours=1) and again.speed == 0
    assert VirtualClock.from_json(saved, speed=5).speed == 5


def test_a_clock_saved_in_the_past_catches_up_with_real_time() -> None:
    past = datetime.now(UTC) - timedelta(days=3)
    saved = VirtualClock(speed=0, start=past).to_json()
    assert VirtualClock.from_json(saved).now() >= datetime.now(UTC) - timedelta(seconds=1)
    assert VirtualClock.from_json(saved, catch_up=False).now() == past
