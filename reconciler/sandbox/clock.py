"""The sandbox's virtual clock: real time scaled by a speed factor, plus explicit jumps.

Workflows in CPS take minutes to hours. Tests and demos move the clock (``advance``) or run it
fast (``speed``) instead of sleeping. Virtual time is ``start + real_elapsed * speed + advanced``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any


class VirtualClock:
    """Virtual UTC time for the sandbox; serialisable so a restart continues where it stopped."""

    def __init__(self, speed: float = 1.0, start: datetime | None = None, offset: float = 0) -> None:
        if speed < 0:
            raise ValueError("speed must not be negative")
        self.speed = speed
        self.start = (start or datetime.now(UTC)).astimezone(UTC)
        self.offset = float(offset)
        self._real_origin = time.monotonic()

    def now(self) -> datetime:
        """Current virtual time (timezone-aware UTC)."""
        elapsed = (time.monotonic() - self._real_origin) * self.speed
        return self.start + timedelta(seconds=elapsed + self.offset)

    def advance(self, seconds: float) -> None:
        """Jump forward by ``seconds`` of virtual time (never backwards)."""
        if seconds < 0:
            raise ValueError("the virtual clock only moves forward")
        self.offset += seconds

    def to_json(self) -> dict[str, Any]:
        """Freeze the current virtual time; a restored clock resumes from it at the same speed."""
        return {"now": self.now().isoformat(), "speed": self.speed}

    @classmethod
    def from_json(cls, data: dict[str, Any], speed: float | None = None, *, catch_up: bool = True) -> VirtualClock:
        """Resume from ``to_json`` output; ``speed`` overrides the stored speed when given.

        With ``catch_up`` (the default) a clock saved behind real time resumes at real time:
        CPS keeps working while the sandbox is stopped, and certificates signed meanwhile with
        real dates must not look "not yet valid" to a sandbox living in the past.
        """
        start = datetime.fromisoformat(str(data["now"]))
        if catch_up:
            start = max(start, datetime.now(UTC))
        return cls(speed=float(data.get("speed", 1.0)) if speed is None else speed, start=start)
