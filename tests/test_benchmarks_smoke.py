"""Keeps benchmarks/run.py from rotting: seed five enrollments and refresh them (no latency, not timed)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.testing import SandboxServer

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_seed_and_refresh_five_enrollments_use_the_minimum_requests() -> None:
    bench = _load()
    with SandboxServer(engine=EngineConfig(create_throttle_seconds=0, validation_policy="trust-ack")) as sandbox:
        seeded = bench.seed(sandbox, 5)
        assert len(seeded.desired) == 5 and seeded.pending == 2  # every third keeps its change
        _, observed, sent = asyncio.run(bench.timed_refresh(sandbox, seeded, 4))
        _, known_observed, known_sent = asyncio.run(bench.timed_refresh(sandbox, seeded, 4, known=True))
    assert known_sent == sent and known_observed.bound == observed.bound  # the same answer, read sooner
    assert set(observed.bound) == {d.name for d in seeded.desired}
    pending = sum(len(o.changes) for o in observed.bound.values())
    assert pending == seeded.pending
    # One list call for the one contract plus one change read per pending change.
    assert sent == 1 + seeded.pending
    known = {n: e.change.change_id for n, e in seeded.known_state.entries.items() if e.change is not None}
    assert len(known) == seeded.pending and all(
        observed.bound[n].changes[0].change_id == cid for n, cid in known.items())


def test_a_size_row_has_every_column_with_the_median_of_its_runs() -> None:
    from benchmarks import run as bench  # by package name: the sandbox's child process imports it too

    row = bench.bench_size(6, latency_ms=0, concurrency=4, serial=False, repeat=3)
    assert row["requests"] == row["minimum_requests"] == 1 + row["pending_changes"] == 3
    runs = row["refresh_runs_seconds"]
    assert len(runs) == 3 and runs == sorted(runs) and row["refresh_seconds"] == runs[1]
    assert len(row["known_refresh_runs_seconds"]) == 3 and row["known_requests"] == row["requests"]
    assert row["ratio"] is None and row["known_rounds_ratio"] is None  # no latency, no bound
    assert set(bench.COLUMNS) - set(row) == {"serial_seconds", "speedup", "known_speedup"}


def test_apply_bench_runs_against_a_sandbox_in_its_own_process() -> None:
    from benchmarks.apply_bench import apply_once

    result = apply_once(2, latency_ms=0, speed=20000.0, parallelism=2, poll=0.05)
    assert result["done"] == 2 and result["statuses"] == ["done"]
    assert result["state_writes"] > 0 and result["sandbox_cpu_seconds"] > 0
