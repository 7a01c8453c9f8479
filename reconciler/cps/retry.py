"""When and how long to wait before trying a CPS call again.

``RetryPolicy`` is data plus two pure helpers (backoff and ``Retry-After`` parsing); the decision
*whether* a given failure may be retried belongs to the caller, which knows whether the call is
safe to repeat (see ``session``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

Sleep = Callable[[float], Awaitable[None]]

# Statuses worth another attempt on a call that is safe to repeat (the one published 500 is the
# gateway's "forward-origin-error" on a GET, latest-parts 500.json, which is transient). A write is
# sent again by itself only on 429, which the gateway answers before CPS sees the request; after a
# 5xx it may have landed, so the client re-reads before deciding (see ``session``).
RETRY_STATUSES_READ = frozenset({429, 500, 502, 503, 504})
RETRY_STATUSES_WRITE = frozenset({429})


@dataclass(frozen=True)
class RetryPolicy:
    """Retry budget and exponential backoff with full jitter.

    ``attempts`` counts the first try. Delay before retry ``n`` (1-based) is
    ``min(max_delay, base_delay * 2**(n-1))``, scaled by a random factor in ``[1 - jitter, 1]``.
    A server's ``Retry-After`` replaces the computed delay (capped at ``max_retry_after``).
    ``conflict_attempts`` bounds the extra tries an input update gets on 409, which CPS answers
    transiently right after an input appears (CPS-API.md 5.3). ``sleep`` is injectable for tests.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 300.0
    conflict_attempts: int = 3
    conflict_delay: float = 2.0
    sleep: Sleep = field(default=asyncio.sleep, compare=False)
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        raw = min(self.max_delay, self.base_delay * (2.0 ** max(0, retry_number - 1)))
        factor = 1.0 - self.jitter * self.rng()
        return max(0.0, raw * factor)

    def delay(self, retry_number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.max_retry_after, max(0.0, retry_after))
        return self.backoff(retry_number)


NO_RETRY = RetryPolicy(attempts=1, conflict_attempts=1)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; ``None`` if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
