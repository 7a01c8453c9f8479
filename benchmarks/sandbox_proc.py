"""A sandbox in a child process, for benchmarks: the client under test keeps its own interpreter.

Running the sandbox in the benchmark's own process makes the client and the CPS stand-in share one
GIL, so the stand-in's CPU (TLS, EdgeGrid verification, JSON, snapshots) shows up as client time.
Real CPS runs elsewhere; so does this one. The child serves over real HTTPS on loopback.
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from reconciler.cps.credentials import Credentials
from reconciler.heap import freeze_startup_heap
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.testing import SandboxServer


@dataclass(frozen=True)
class Endpoint:
    """Where a sandbox answers (picklable, so the sandbox can run in another process)."""

    base_url: str
    credentials: Credentials
    ca_bundle: str


def peak_rss_mb() -> float:
    """Peak resident set of this process, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds() -> float:
    """CPU time (user + system) this process used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


Setup = Callable[[SandboxServer], Any]
"""Runs in the child once the sandbox is up; its (picklable) result goes to the parent."""


def _serve(options: dict[str, Any], setup: Setup | None, conn: Connection) -> None:
    # No create throttle and no request limits, said explicitly: these benchmarks measure latency
    # and work per request; what the account's request budget costs is measured on its own.
    options = {"rate_limits": (), **options}
    with SandboxServer(engine=EngineConfig(create_throttle_seconds=0, validation_policy="trust-ack"), **options) as sandbox:
        extra = setup(sandbox) if setup is not None else None
        freeze_startup_heap()  # as `reconcile sandbox` does once its data is loaded
        conn.send((Endpoint(sandbox.base_url, sandbox.credentials, sandbox.ca_bundle), extra))
        while True:
            command, value = conn.recv()
            if command == "cpu":
                conn.send(cpu_seconds())
            elif command == "latency":
                sandbox.clear_faults()
                if value > 0:
                    sandbox.set_faults(latency=[{"ms": value}])
                conn.send("ok")
            else:
                break
        conn.send((peak_rss_mb(), cpu_seconds()))


class SandboxProcess:
    """Control of a sandbox child: its endpoint, what ``setup`` returned, latency, peak RSS."""

    def __init__(self, conn: Connection, endpoint: Endpoint, extra: Any) -> None:
        self._conn = conn
        self.endpoint = endpoint
        self.extra = extra
        self.peak_rss_mb: float | None = None
        self.cpu_seconds: float | None = None
        """The child's CPU seconds when it stopped."""

    def set_latency(self, ms: float) -> None:
        """Injected latency on every CPS request from now on (0: none)."""
        self._conn.send(("latency", ms))
        self._conn.recv()

    def cpu(self) -> float:
        """CPU seconds the child used so far."""
        self._conn.send(("cpu", 0))
        return float(self._conn.recv())

    def stop(self) -> float:
        """Stop serving; returns the child's peak RSS in MiB."""
        if self.peak_rss_mb is None:
            self._conn.send(("stop", 0))
            self.peak_rss_mb, self.cpu_seconds = self._conn.recv()
        return self.peak_rss_mb


@contextmanager
def sandbox_process(setup: Setup | None = None, **options: Any) -> Iterator[SandboxProcess]:
    """Start a sandbox (``SandboxServer(**options)``, no create throttle, no request limits unless
    ``rate_limits`` is given) in a spawned child."""
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(target=_serve, args=(options, setup, theirs), daemon=True)
    child.start()
    try:
        while not ours.poll(0.2):
            if not child.is_alive():  # died starting up (its traceback is on stderr): do not wait forever
                raise RuntimeError(f"the sandbox process exited with code {child.exitcode} before it was ready")
        endpoint, extra = ours.recv()
        process = SandboxProcess(ours, endpoint, extra)
        try:
            yield process
        finally:
            process.stop()
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
