"""Per-account request limits, answered the way the Akamai API gateway answers them.

CPS allows an account 20 requests per 2 seconds and 100 per 2 minutes, across all of its
credentials (CPS-API.md section 8). Over either, the gateway answers 429 with ``Retry-After`` and
the body ``{"type": "429 Too Many Requests", "title": "Too Many Requests", "detail": "You have
exhausted your API Request Quota. Retry after: N seconds."}`` (``responses.rate_limited``).

| setting | limits |
|---|---|
| ``production`` (default) | 20 per 2 s and 100 per 120 s |
| ``off`` | none (a test that needs unlimited traffic says so) |
| ``"20/2s,100/120s"`` | any list of ``COUNT/SECONDSs`` sliding windows |

Windows slide on the sandbox's virtual clock, like every other CPS duration: a sandbox running at
speed S enforces the limits S times faster in real time, and ``/_sandbox/advance`` lets them pass.
``SandboxConfig.rate_limit_speed`` slides them at a fixed multiple of real time instead: the
in-process ``--sandbox`` demo (clock x1000) uses x100, reachable by its traffic, and its client
paces at the same scale, so the Quickstart really waits for the limits. Every
signed request to a CPS, Edge DNS or Contract API route counts once it is admitted; a refused
request does not count; the admin routes never count. ``Retry-After`` is real seconds (virtual
seconds divided by the speed), rounded up to whole seconds unless that is below one.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

Window = tuple[int, float]
PRODUCTION: tuple[Window, ...] = ((20, 2.0), (100, 120.0))
_WINDOW = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")


def parse_rate_limits(text: str) -> tuple[Window, ...]:
    """``production``, ``off`` or ``"20/2s,100/120s"`` as ``((count, seconds), ...)``."""
    value = text.strip().lower()
    if value == "production":
        return PRODUCTION
    if value in ("off", "none", ""):
        return ()
    windows = []
    for part in value.split(","):
        match = _WINDOW.match(part)
        if match is None or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
            raise ValueError(f"rate limit {part.strip()!r} is not COUNT/SECONDSs (e.g. 20/2s)")
        windows.append((int(match.group(1)), float(match.group(2))))
    return tuple(windows)


@dataclass
class RateLimiter:
    """Sliding windows over the times (virtual seconds) of the requests admitted so far."""

    windows: tuple[Window, ...] = PRODUCTION
    _admitted: deque[float] = field(default_factory=deque)
    refused: int = 0

    def admit(self, now: float) -> float | None:
        """Count a request at ``now`` and return None, or refuse it: the virtual seconds until it
        would fit. Admitted times older than the longest window are forgotten."""
        if not self.windows:
            return None
        longest = max(seconds for _, seconds in self.windows)
        while self._admitted and self._admitted[0] <= now - longest:
            self._admitted.popleft()
        wait = 0.0
        for count, seconds in self.windows:
            inside = self._recent(now - seconds)
            if len(inside) >= count:
                # The window frees a slot when its oldest counted request leaves it.
                wait = max(wait, inside[len(inside) - count] + seconds - now)
        if wait > 0:
            self.refused += 1
            return wait
        self._admitted.append(now)
        return None

    def _recent(self, since: float) -> list[float]:
        return [t for t in self._admitted if t > since]


def retry_after_seconds(virtual_wait: float, speed: float) -> float:
    """The ``Retry-After`` for a virtual wait on a clock running at ``speed``."""
    real = virtual_wait / speed if speed > 0 else virtual_wait
    return float(math.ceil(real)) if real >= 1 else round(max(real, 0.001), 3)
