"""What one enrollment's workflow needs to run, and what it ends with.

Shared by the step machine (``workflow``) and its input handlers (``dv_step``, ``upload_step``,
``ack_step``), so that none of them imports another.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from reconciler.apply.journal import StateJournal
from reconciler.apply.publishers.base import Publisher
from reconciler.apply.testhooks import checkpoint
from reconciler.cps.client import CpsClient
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec

if TYPE_CHECKING:
    from reconciler.apply.propagation import ChallengeChecker

OutcomeStatus = Literal["done", "waiting", "submitted", "failed", "timeout", "held"]
Report = Callable[[str, str, str], None]
"""``report(name, step, detail)``: progress for people; never blocks."""


@dataclass(frozen=True)
class Outcome:
    """How one enrollment's run ended.

    ``done``: applied (deployed, when waiting for deployment was asked); ``submitted``: CPS has
    everything apply can give and works on its own; ``waiting``: a person must act (exit 3);
    ``failed``: an error (exit 1); ``timeout``: ``--timeout`` ran out while CPS was working;
    ``held``: an enrollment kept because its successor is not deployed yet (the successor's own
    outcome says why; the next apply takes it from there).
    """

    name: str
    status: OutcomeStatus
    message: str
    details: tuple[str, ...] = ()

    @property
    def waiting(self) -> bool:
        return self.status == "waiting"


class Stop(Exception):
    """Raised by a step handler to end the enrollment's run with ``outcome``."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


@dataclass(frozen=True)
class PollPolicy:
    """How often to read a change while CPS works: backoff from ``initial`` to ``maximum``.

    Against real CPS the account's rate limit (CPS-API.md 9) wants tens of seconds; against the
    sandbox at high speed a fraction of a second is right.
    """

    initial: float = 10.0
    maximum: float = 60.0
    factor: float = 1.5
    jitter: float = 0.2
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)

    def next(self, current: float) -> float:
        return min(self.maximum, current * self.factor)

    def jittered(self, delay: float) -> float:
        return max(0.0, delay * (1.0 + self.jitter * (2 * random.random() - 1)))


@dataclass
class WorkflowContext:
    """One enrollment's run: who, what spec, where files go, how to record and report."""

    name: str
    spec: DvEnrollmentSpec | ThirdPartyEnrollmentSpec
    client: CpsClient
    journal: StateJournal
    root: Path
    state_dir: Path
    run_id: str
    deadline: float
    poll: PollPolicy = PollPolicy()
    wait_for_deployment: bool = True
    publisher: Callable[[], Publisher] | None = None
    checker: Callable[[], ChallengeChecker | None] | None = None
    """DV: the propagation check to pass before acknowledging challenges (None, or returning None: off)."""
    report: Report | None = None
    previous_production: frozenset[str] = frozenset()
    """Fingerprints production served before this change (a new certificate must differ)."""
    expect_new_certificate: bool = True
    single_pass: bool = False
    """Give what the change asks for now, then stop instead of polling (no waiting asked for)."""
    clock: Callable[[], float] = time.monotonic

    def step(self, step: str, detail: str = "") -> None:
        if self.report is not None:
            self.report(self.name, step, detail)

    def checkpoint(self, boundary: str) -> None:
        checkpoint(self.name, boundary)

    def outcome(self, status: OutcomeStatus, message: str, details: list[str] | tuple[str, ...] = ()) -> Outcome:
        return Outcome(self.name, status, message, tuple(details))

    def wait(self, message: str, details: list[str] | tuple[str, ...] = ()) -> Stop:
        return Stop(self.outcome("waiting", message, details))

    def fail(self, message: str, details: list[str] | tuple[str, ...] = ()) -> Stop:
        return Stop(self.outcome("failed", message, details))

    @property
    def time_left(self) -> float:
        return self.deadline - self.clock()
