from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.cps.retry import RetryPolicy, parse_retry_after

NOW = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "seconds"), [
    ("21", 21.0), (" 0 ", 0.0), ("1.5", 1.5), ("-3", 0.0),
    ("Fri, 31 Jan 2025 12:00:30 GMT", 30.0), ("Fri, 31 Jan 2025 11:59:00 GMT", 0.0),
    (None, None), ("", None), ("soon", None),
])
def test_retry_after_seconds_or_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_shrinks_the_delay_within_bounds() -> None:
    assert RetryPolicy(base_delay=2.0, jitter=0.5, rng=lambda: 1.0).backoff(1) == 1.0
    assert RetryPolicy(base_delay=2.0, jitter=0.5, rng=lambda: 0.0).backoff(1) == 2.0


def test_retry_after_replaces_backoff_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, jitter=0.0, max_retry_after=60.0)
    assert policy.delay(1, 21.0) == 21.0
    assert policy.delay(1, 3600.0) == 60.0
    assert policy.delay(3, None) == 2.0
