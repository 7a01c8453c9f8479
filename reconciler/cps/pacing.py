"""One shared pace for every request a client sends.

CPS limits an account to about 20 requests per 2 s and 100 per 2 min (CPS-API.md section 8); a
429 carries ``Retry-After``, and since the limit is per account, one 429 means *every* request
should hold off, not just the one that got it. ``Pacer`` combines that global hold with an
optional token bucket. The bucket is on by default for real CPS (``CPS_ACCOUNT_LIMIT``) and,
scaled to its speed, for the in-process sandbox, which enforces the same limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.cps.retry import Sleep


@dataclass(frozen=True)
class RateLimit:
    """Token bucket settings: ``burst`` requests at once, refilled at ``per_second``."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("rate limit needs per_second > 0 and burst >= 1")


# 19 at once plus 2/3 per second stays under both documented windows: at most ~20 in any 2 s
# and 19 + 80 = 99 in any 2 min.
CPS_ACCOUNT_LIMIT = RateLimit(per_second=2 / 3, burst=19)


def scaled_account_limit(speed: float) -> RateLimit | None:
    """``CPS_ACCOUNT_LIMIT`` for a sandbox whose limit windows run ``speed`` times real time."""
    if speed <= 0:
        return None
    return RateLimit(per_second=CPS_ACCOUNT_LIMIT.per_second * speed, burst=CPS_ACCOUNT_LIMIT.burst)


class Pacer:
    """Global ``Retry-After`` hold plus an optional token bucket, shared by all calls of a client.

    Waiting is computed, not polled: a caller reserves its slot and sleeps once for exactly the
    time it must wait, which keeps it correct with an injected (instant) sleep in tests.
    """

    def __init__(self, limit: RateLimit | None, *, sleep: Sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._sleep = sleep
        self._clock = clock
        self._tokens = float(limit.burst) if limit else 0.0
        self._last = clock()
        self._hold_until = 0.0
        self.waited = 0.0

    @property
    def limit(self) -> RateLimit | None:
        return self._limit

    def hold(self, seconds: float) -> None:
        """Make every request (including the caller's next try) wait ``seconds`` from now."""
        self._hold_until = max(self._hold_until, self._clock() + max(0.0, seconds))

    async def wait(self) -> float:
        """Wait for the global hold and for a token; returns the seconds this caller slept."""
        now = self._clock()
        delay = max(0.0, self._hold_until - now)
        if self._limit is not None:
            rate = self._limit.per_second
            # Tokens refill from the end of any hold, so a burst does not fire the moment it ends.
            start = max(now, self._hold_until)
            self._tokens = min(float(self._limit.burst), self._tokens + max(0.0, start - self._last) * rate)
            self._last = start
            self._tokens -= 1.0
            if self._tokens < 0:
                delay += -self._tokens / rate
        if delay > 0:
            self.waited += delay
            await self._sleep(delay)
        return delay
