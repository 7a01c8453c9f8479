"""Apply benchmark: N new DV enrollments with a hook publisher against the sandbox over HTTPS with
latency and an accelerated virtual clock; wall time vs the single slowest enrollment's workflow.

The sandbox runs in its own process (as real CPS would not share the client's interpreter) and the
apply holds the state lock for the whole run, as ``reconcile apply`` does."""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks.sandbox_proc import Endpoint, cpu_seconds, sandbox_process
from reconciler.apply.context import PollPolicy
from reconciler.apply.executor import ApplyOptions, Executor
from reconciler.apply.journal import StateJournal
from reconciler.config import load_config
from reconciler.cps.client import CpsClient
from reconciler.plan.pipeline import build_plan
from reconciler.plan.planner import PlanOptions
from reconciler.spec.loader import load_specs
from reconciler.state.store import StateStore

CONTRACT = "ctr_1-BENCH"
PERSON = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1 555 0100"}
ORG = {"name": "Example Org", "phone": "+1 555 0100", "address_line_one": "1 Main St", "city": "Cambridge",
       "region": "MA", "postal_code": "02142", "country_code": "US"}
SANDBOX_PERSIST_SECONDS = 1.0
"""The CPS stand-in saves its data file at most once a second (not after every write): its own
durability is not what is measured, and a full snapshot per write made it the bottleneck."""
HOOK = 'echo "$RECONCILE_RECORD_NAME $RECONCILE_RECORD_VALUE" >> published.txt'


def write_repo(root: Path, n: int) -> None:
    """A reconcile.yaml and ``n`` DV specs published by a shell hook."""
    (root / "reconcile.yaml").write_text(yaml.safe_dump({
        "default_contract": CONTRACT,
        "defaults": {"admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG}}))
    specs = root / "specs"
    specs.mkdir()
    for i in range(n):
        spec = {"name": f"site{i:04d}", "type": "dv", "common_name": f"site{i}.bench.example.com",
                "validation": {"method": "dns-01", "publisher": "hook", "hook": {"publish": HOOK}}}
        (specs / f"site{i:04d}.yaml").write_text(yaml.safe_dump(spec))


@dataclass
class Applied:
    """One measured apply."""

    seconds: float
    statuses: list[str]
    requests: int
    state_writes: int
    client_cpu: float


async def _apply(sandbox: Endpoint, root: Path, parallelism: int, poll: float) -> Applied:
    config = load_config(root / "reconcile.yaml")
    loaded = load_specs(config)
    store = StateStore(config.state_path)
    # Held for the whole run, as `reconcile apply` holds it.
    with store.lock("apply"):
        async with CpsClient(sandbox.credentials, base_url=sandbox.base_url, verify=sandbox.ca_bundle,
                             max_in_flight=16, rate_limit=None) as client:
            start, cpu = time.perf_counter(), cpu_seconds()
            # Stamped as `reconcile apply` stamps it: the executor trusts the refresh's same-CN
            # enrollments for a minute after this, instead of listing the contract before each create.
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            result = await build_plan(loaded, store.read(), client, PlanOptions(now=stamp))
            executor = Executor(client=client, journal=StateJournal(store),
                                specs={s.name: s.spec for s in loaded.specs}, root=config.root,
                                state_dir=config.state_path.parent,
                                options=ApplyOptions(parallelism=parallelism, timeout=600.0,
                                                     poll=PollPolicy(initial=poll, maximum=poll, jitter=0.0)))
            outcome = await executor.run(result.plan)
            return Applied(time.perf_counter() - start, [o.status for o in outcome.outcomes],
                           client.stats.requests, store.writes, cpu_seconds() - cpu)


def apply_once(n: int, *, latency_ms: float, speed: float, parallelism: int, poll: float) -> dict[str, Any]:
    """Plan + apply ``n`` new DV enrollments on a fresh sandbox; wall seconds, outcomes, CPU."""
    with tempfile.TemporaryDirectory(prefix="cps-bench-") as tmp, \
            sandbox_process(speed=speed, persist_interval=SANDBOX_PERSIST_SECONDS) as sandbox:
        root = Path(tmp)
        write_repo(root, n)
        sandbox.set_latency(latency_ms)
        sandbox_cpu = sandbox.cpu()
        applied = asyncio.run(_apply(sandbox.endpoint, root, parallelism, poll))
        sandbox_cpu = sandbox.cpu() - sandbox_cpu
        return {"n": n, "seconds": round(applied.seconds, 3), "done": applied.statuses.count("done"),
                "requests": applied.requests, "statuses": sorted(set(applied.statuses)),
                "state_writes": applied.state_writes, "client_cpu_seconds": round(applied.client_cpu, 2),
                "sandbox_cpu_seconds": round(sandbox_cpu, 2)}


def bench_apply(n: int, *, latency_ms: float, speed: float = 1000.0, poll: float = 0.25) -> dict[str, Any]:
    """The slowest single workflow (one enrollment alone) vs ``n`` at once; ratio target <= 1.5."""
    single = apply_once(1, latency_ms=latency_ms, speed=speed, parallelism=1, poll=poll)
    many = apply_once(n, latency_ms=latency_ms, speed=speed, parallelism=n, poll=poll)
    return {"n": n, "speed": speed, "poll_seconds": poll, "single_seconds": single["seconds"],
            "many_seconds": many["seconds"], "ratio": round(many["seconds"] / single["seconds"], 3),
            "done": many["done"], "requests": many["requests"], "statuses": many["statuses"],
            "single_statuses": single["statuses"], "state_writes": many["state_writes"],
            "journal_records_coalesced": True, "sandbox_process": "separate",
            "client_cpu_seconds": many["client_cpu_seconds"], "sandbox_cpu_seconds": many["sandbox_cpu_seconds"]}
