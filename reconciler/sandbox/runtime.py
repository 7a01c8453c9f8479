"""One running sandbox: the engine and its clock and CA, the data file, auth, faults, request log."""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from reconciler.sandbox.auth import EdgeGridVerifier
from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.clock import VirtualClock
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.engine import Engine
from reconciler.sandbox.enrollment_rules import all_names
from reconciler.sandbox.faults import FaultPlan
from reconciler.sandbox.persistence import DataStore
from reconciler.sandbox.ratelimit import RateLimiter, retry_after_seconds


def iso(moment: datetime) -> str:
    """``2025-01-31T12:34:56Z`` (UTC, whole seconds), the way CPS writes timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SandboxRuntime:
    """The live state behind the ASGI app; restored from ``config.data_dir`` when data exists there.

    Not thread-safe: the app calls it from one event loop (engine calls are quick and synchronous).
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = DataStore(config.data_dir) if config.data_dir is not None else None
        saved = self.store.load() if self.store is not None else None
        if saved is not None:
            # The engine's snapshot carries its clock (resumed at the saved virtual time) and CA.
            engine_data: dict[str, Any] | None = saved["engine"]
            assert engine_data is not None
            self.clock = VirtualClock.from_json(engine_data["clock"], speed=config.speed)
            self.ca = CertificateAuthority.from_json(engine_data["ca"])
            self.counters: dict[str, int] = dict(saved.get("counters") or {})
        else:
            self.clock = VirtualClock(speed=config.speed)
            self.ca = CertificateAuthority()
            engine_data = None
            self.counters = {}
        self.counters.setdefault("requests", 0)
        self.counters.setdefault("writes", 0)
        self.engine = Engine(config.engine, self.clock, self.ca, data=engine_data)
        self.faults = FaultPlan(list(config.faults), list(config.latency), config.seed)
        self.limiter = RateLimiter(tuple(config.rate_limits))
        creds = config.credentials
        self.verifier = EdgeGridVerifier(creds.client_token, creds.client_secret, creds.access_token,
                                         max_body=config.max_body, skew_seconds=config.skew_seconds)
        self._persisted_at = time.monotonic()
        self._dirty = False
        self.requests: deque[dict[str, Any]] = deque(maxlen=config.request_log_size)
        if self.store is not None and saved is None:
            self.persist()

    def __repr__(self) -> str:
        return f"SandboxRuntime(store={self.store!r}, speed={self.clock.speed})"

    def now(self) -> datetime:
        """Current virtual time."""
        return self.clock.now()

    def rate_limited(self) -> float | None:
        """Admit one request under the rate limits, or the real seconds to wait (``Retry-After``)."""
        scale = self.config.rate_limit_speed
        now = self.now().timestamp() if scale is None else time.monotonic() * scale
        wait = self.limiter.admit(now)
        if wait is None:
            return None
        return retry_after_seconds(wait, self.clock.speed if scale is None else scale)

    def persist(self) -> None:
        """Write everything to the data file now (a no-op for an in-memory sandbox)."""
        if self.store is None:
            return
        self.counters["writes"] += 1
        self._persisted_at = time.monotonic()
        self._dirty = False
        self.store.save({"engine": self.engine.snapshot(), "counters": dict(self.counters)})

    def wrote(self) -> None:
        """A mutating request succeeded: persist now, or within ``config.persist_interval``."""
        self._dirty = True
        self._flush(self.config.persist_interval)

    def after_request(self) -> None:
        """Flush deferred writes that are due; after reads, save at most every few seconds.

        Reads run due transitions too (a certificate gets issued, a deployment completes); saving
        them now and then bounds what a crash loses without paying a write per GET.
        """
        self._flush(self.config.persist_interval if self._dirty else self.config.read_persist_interval)

    def _flush(self, max_age: float) -> None:
        if self.store is not None and time.monotonic() - self._persisted_at >= max_age:
            self.persist()

    def advance(self, seconds: float) -> datetime:
        """Move the virtual clock, run the transitions that fall due, persist; returns the new now."""
        self.engine.advance(seconds)
        self.persist()
        return self.now()

    def engine_summary(self) -> dict[str, Any]:
        """A short view of the engine's data for ``GET /_sandbox/state``: per enrollment its id,
        contract, CN, changes still in flight, the networks it is deployed on, per network the
        names served (lower-case) and since when (virtual time), and when a DELETE takes it away
        (``deleteAt``)."""
        snapshot = self.engine.snapshot()
        enrollments = []
        for record in (snapshot.get("enrollments") or {}).values():
            csr = (record.get("body") or {}).get("csr") or {}
            in_flight = [{key: change.get(key) for key in ("id", "type", "status", "state")}
                         for change in (record.get("changes") or {}).values()
                         if change.get("state") not in ("completed", "cancelled")]
            deployed = sorted(name for name, value in (record.get("deployments") or {}).items() if value)
            served = {network: {"names": sorted({n.lower() for n in all_names(value["body"])}),
                                "deployed": value.get("deployed")}
                      for network, value in (record.get("deployments") or {}).items() if value}
            enrollments.append({"id": record.get("id"), "contract": record.get("contract"), "cn": csr.get("cn"),
                                "pendingChanges": in_flight, "deployedOn": deployed, "served": served,
                                "deleteAt": record.get("delete_at")})
        return {"enrollments": enrollments}

    def log_request(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append one request to the log (the entry is completed in place once answered)."""
        self.counters["requests"] += 1
        self.requests.append(entry)
        return entry
