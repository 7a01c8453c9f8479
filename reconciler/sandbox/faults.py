"""Latency and fault injection for the sandbox, deterministic under a seed.

A ``FaultRule`` matches requests by method and a glob on the path (``/cps/v2/enrollments/*``) and
does one thing to them:

- ``status``: answer with ``status`` (a problem body; for 429 the CPS rate-limit body, and a
  ``Retry-After`` header when ``retry_after`` is set);
- ``drop``: close the connection without any answer;
- ``truncate``: run the request, then send only the first ``keep`` bytes of its JSON body (as a
  complete HTTP message, so the client sees malformed JSON rather than a short read);
- ``timeout``: keep the connection silent for ``hold_ms``, then close it without an answer (a
  client with a shorter read timeout gives up first);
- ``empty``: run the request and, if CPS answered 2xx, answer ``status`` (when it is a 2xx, else
  the status CPS chose) with no body at all, as production answers some writes;
- ``loose``: run the request and send its 2xx JSON answer with the types production sends loosely
  (``quirks.loosen``: booleans and ids as strings where real answers have them).

``empty`` and ``loose`` are production's quieter moods, not failures: ``quirks.PRODUCTION_QUIRKS``
is the set ``reconcile sandbox --quirks`` turns on, and a client must converge under it.

``phase`` says whether ``status``/``drop``/``timeout`` happen ``before`` the request reaches CPS
(nothing changed) or ``after`` it was processed (the change happened, the answer is lost): the
second is what makes a client's "never blindly retry a create" logic testable. ``count`` limits a
rule to its first N firings; ``probability`` makes it fire at random, from one seeded generator.

``path`` is a glob (``*`` also crosses ``/``) or a route template whose ``{placeholders}`` stand
for exactly one path segment (``/cps/v2/enrollments/{enrollmentId}`` matches an enrollment, not
its changes). ``tag`` limits a rule to requests carrying the header ``X-Sandbox-Tag: <tag>``, so
that tests sharing one sandbox can each fault only their own traffic.

``LatencyRule``s add real-time delay (``ms`` plus uniform ``jitter_ms``); the first matching one
applies. Latency and faults apply to CPS routes only, never to the ``/_sandbox/`` admin routes.
"""

from __future__ import annotations

import fnmatch
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Action = Literal["status", "drop", "truncate", "timeout", "empty", "loose"]
Phase = Literal["before", "after"]
_ACTIONS = ("status", "drop", "truncate", "timeout", "empty", "loose")
# Actions that rewrite the real answer, so always run after the request was processed.
_REWRITES = ("truncate", "empty", "loose")
_PHASES = ("before", "after")
TAG_HEADER = "x-sandbox-tag"
"""Request header a rule's ``tag`` is matched against."""

_PLACEHOLDER = re.compile(r"\{[^{}/]*\}")


def _template(pattern: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(pattern)
    return re.compile("[^/]+".join(re.escape(part) for part in parts) + r"\Z")


def _path_matches(pattern: str, path: str) -> bool:
    if _PLACEHOLDER.search(pattern):
        return _template(pattern).match(path) is not None
    return fnmatch.fnmatchcase(path, pattern)


def _matches(pattern_method: str, pattern_path: str, method: str, path: str) -> bool:
    method_ok = pattern_method in ("*", "") or pattern_method.upper() == method.upper()
    return method_ok and _path_matches(pattern_path, path)


@dataclass
class FaultRule:
    """One injected failure for the requests matching ``method`` and the ``path`` glob."""

    action: Action = "status"
    path: str = "*"
    method: str = "*"
    status: int = 500
    retry_after: float | None = None
    detail: str | None = None
    keep: int = 20
    hold_ms: float = 5000.0
    phase: Phase = "before"
    count: int | None = None
    probability: float = 1.0
    tag: str | None = None
    fired: int = 0

    def __post_init__(self) -> None:
        if self.action not in _ACTIONS:
            raise ValueError(f"fault action must be one of {', '.join(_ACTIONS)}, not {self.action!r}")
        if self.phase not in _PHASES:
            raise ValueError(f"fault phase must be 'before' or 'after', not {self.phase!r}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("fault probability must be between 0 and 1")
        if not 100 <= self.status <= 599:
            raise ValueError("fault status must be an HTTP status code")
        if self.count is not None and self.count < 0:
            raise ValueError("fault count must not be negative")
        if self.keep < 0:
            raise ValueError("truncate keep must not be negative")
        if self.hold_ms < 0:
            raise ValueError("timeout hold_ms must not be negative")

    def matches(self, method: str, path: str, tag: str | None = None) -> bool:
        if self.tag is not None and self.tag != tag:
            return False
        return _matches(self.method, self.path, method, path)

    @property
    def hold_seconds(self) -> float:
        return self.hold_ms / 1000.0

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        known = {f for f in cls.__dataclass_fields__ if f != "fired"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LatencyRule:
    """Real-time delay for matching requests: ``ms`` plus a uniform ``0..jitter_ms``."""

    ms: float = 0.0
    jitter_ms: float = 0.0
    path: str = "*"
    method: str = "*"

    def __post_init__(self) -> None:
        if self.ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency must not be negative")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LatencyRule:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown latency field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultPlan:
    """The live set of latency and fault rules, with the one random generator they draw from."""

    rules: list[FaultRule] = field(default_factory=list)
    latency: list[LatencyRule] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def reseed(self, seed: int | None) -> None:
        self.seed = seed
        self._random = random.Random(seed)

    def delay_seconds(self, method: str, path: str) -> float:
        """Seconds to wait before handling this request (first matching latency rule)."""
        for rule in self.latency:
            if _matches(rule.method, rule.path, method, path):
                jitter = self._random.uniform(0.0, rule.jitter_ms) if rule.jitter_ms else 0.0
                return (rule.ms + jitter) / 1000.0
        return 0.0

    def pick(self, method: str, path: str, phase: Phase, tag: str | None = None) -> FaultRule | None:
        """The first rule that matches, has firings left and wins its probability draw; counts it."""
        for rule in self.rules:
            if rule.exhausted or not rule.matches(method, path, tag):
                continue
            # A rewrite always acts on the real answer, whatever its phase says.
            rule_phase = "after" if rule.action in _REWRITES else rule.phase
            if rule_phase != phase:
                continue
            if rule.probability < 1.0 and self._random.random() >= rule.probability:
                continue
            rule.fired += 1
            return rule
        return None

    def add(self, data: dict[str, Any]) -> None:
        """Merge an admin ``POST /_sandbox/faults`` body: ``{"rules", "latency", "seed"}``."""
        unknown = set(data) - {"rules", "latency", "seed"}
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        rules = [FaultRule.from_json(item) for item in data.get("rules") or []]
        latency = data.get("latency")
        if isinstance(latency, dict):
            latency = [latency]
        latency_rules = [LatencyRule.from_json(item) for item in latency or []]
        self.rules.extend(rules)
        # New latency rules go first: the most recent setting for a route wins.
        self.latency[:0] = latency_rules
        if "seed" in data:
            self.reseed(data["seed"])

    def clear(self) -> None:
        self.rules.clear()
        self.latency.clear()

    def to_json(self) -> dict[str, Any]:
        return {"rules": [r.to_json() for r in self.rules], "latency": [r.to_json() for r in self.latency],
                "seed": self.seed}
