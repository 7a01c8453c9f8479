"""SIGKILL `reconcile apply` while one of its requests is in flight, then rerun: it converges.

Two kinds of point, for each write apply makes (create, update, DV acknowledgement, third-party
upload, change-management acknowledgement) and for reads:

- ``before``: the sandbox's own latency rule holds the request before CPS sees it; once the
  request log shows it arrived, apply is killed; a ``drop`` rule then discards it, so the write
  never happened.
- ``after``: CPS processed the request (the write landed) and its answer is held back (a thin
  ASGI wrapper inside the sandbox server, between its gateway and CPS); apply is killed before
  the answer arrives, which is the case "did my create/upload happen?" is about.

After the kill, faults are cleared and apply runs again; the estate must converge: exactly one
enrollment per spec, state settled and matching CPS, one upload ever reaching CPS (the rerun
settles a landed upload instead of sending it again), an empty plan, no credential in any output.
The deterministic cases cover every write; a few more are drawn from a seeded generator
(``RECONCILE_CRASH_SEED`` changes the seed to explore; failures print it).
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from reconciler.sandbox.app import Gateway
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from tests.e2e.test_apply_e2e import _converged, cli, crash_specs, write_repo
from tests.secretscan import scan_for_secrets, secrets_of

CHANGE = "/cps/v2/enrollments/*/changes/*"
UPLOAD = f"{CHANGE}/input/update/third-party-cert-and-trust-chain"
# operation -> (method, path glob, the spec whose workflow makes that request)
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "create": ("POST", "/cps/v2/enrollments", "www"),
    "update": ("PUT", "/cps/v2/enrollments/*", "www"),
    "ack-dv": ("POST", f"{CHANGE}/input/update/lets-encrypt-challenges-completed", "www"),
    "upload": ("POST", UPLOAD, "shop"),
    "ack-change-management": ("POST", f"{CHANGE}/input/update/change-management-ack", "shop"),
    "poll": ("GET", CHANGE, "www"),
}


@dataclass(frozen=True)
class Case:
    """Requests to cut (operation, occurrence) in one run, all in one phase; ``update`` applies the
    specs first and then shrinks www's SANs, so the killed run updates instead of creating."""

    phase: str
    targets: tuple[tuple[str, int], ...]
    names: tuple[str, ...]
    update: bool = False

    @property
    def label(self) -> str:
        return "+".join(f"{op}#{n}" for op, n in self.targets) + f"/{self.phase}"


# Every write apply makes, cut after CPS processed it. Where two independent workflows each make
# one (both creates; www's DV acknowledgement and shop's upload), one run cuts both at once.
DETERMINISTIC = [
    Case("after", (("create", 1), ("create", 2)), ("www", "shop")),
    Case("after", (("ack-dv", 1), ("upload", 1)), ("www", "shop")),
    Case("after", (("ack-change-management", 1),), ("shop",)),
    Case("after", (("update", 1),), ("www",), update=True),
]
SEED = int(os.environ.get("RECONCILE_CRASH_SEED", "20261129"))
RANDOM_CASES = 1
ENV = {"RECONCILE_POLL_INTERVAL": "0.02"}


def random_cases(seed: int, count: int) -> list[Case]:
    """``count`` distinct single cuts the deterministic list lacks: any operation before CPS saw it,
    or a change-status poll after (at its 1st to 3rd occurrence)."""
    rng = random.Random(seed)
    covered = {(op, case.phase) for case in DETERMINISTIC for op, _ in case.targets}
    pool = sorted((op, phase) for op in OPERATIONS for phase in ("before", "after") if (op, phase) not in covered)
    return [Case(phase, ((op, rng.randint(1, 3) if op == "poll" else 1),), (OPERATIONS[op][2],),
                 update=op == "update")
            for op, phase in rng.sample(pool, count)]


@dataclass
class HoldAnswer:
    """ASGI layer between the sandbox's gateway and CPS: lets the ``occurrence``-th request matching
    each target be processed, then holds its answer until released (it then goes to a client that
    was killed meanwhile)."""

    inner: Any
    targets: list[tuple[str, str, int]]
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    landed: set[int] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        index = self._held_target(scope)
        if index is None:
            await self.inner(scope, receive, send)
            return

        async def held(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.landed.add(index)
                while not self.release.is_set():
                    await anyio.sleep(0.01)
            await send(message)

        await self.inner(scope, receive, held)

    def _held_target(self, scope: Any) -> int | None:
        if scope["type"] != "http":
            return None
        for key in {(method, path) for method, path, _ in self.targets}:
            if scope["method"] == key[0] and fnmatch.fnmatchcase(scope["path"], key[1]):
                self.seen[key] = self.seen.get(key, 0) + 1
                for index, (method, path, occurrence) in enumerate(self.targets):
                    if (method, path) == key and occurrence == self.seen[key]:
                        return index
        return None

    def all_landed(self) -> bool:
        return len(self.landed) == len(self.targets)


def _gateway(server: SandboxServer) -> Gateway:
    server.now()  # the first request makes Starlette build its middleware stack (the gateway)
    gateway = server.app.middleware_stack
    assert isinstance(gateway, Gateway)
    return gateway


def _popen_apply(server: SandboxServer, repo: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "AKAMAI_EDGERC": str(server.edgerc), "AKAMAI_EDGERC_SECTION": "sandbox",
           "RECONCILE_CA_BUNDLE": server.ca_bundle, **ENV}
    return subprocess.Popen([sys.executable, "-m", "reconciler", "--no-color", "apply", "--auto-approve",
                             "--timeout", "25"], cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _arrived(server: SandboxServer, method: str, path: str, occurrence: int) -> dict[str, Any] | None:
    matching = [r for r in server.requests()
                if r["method"] == method and fnmatch.fnmatchcase(r["path"], path)]
    return matching[occurrence - 1] if len(matching) >= occurrence and matching[occurrence - 1]["status"] is None \
        and matching[occurrence - 1]["fault"] is None else None


def _wait(condition: Any, process: subprocess.Popen[str], seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            return None
        time.sleep(0.005)
    return None


def crash_case(root: Path, index: int, case: Case) -> list[str]:
    """One run killed mid-request, then the rerun; problems found (empty: converged)."""
    targets = [(*OPERATIONS[op][:2], n) for op, n in case.targets]
    tag, contract = f"m{index}", f"ctr_1-MID{index}"
    repo = root / tag
    outputs: list[str] = []
    with SandboxServer(speed=20000, engine=EngineConfig(validation_policy="trust-ack")) as server:
        write_repo(repo, contract, crash_specs(tag, case.names))
        if case.update:
            first = cli(server, repo, "apply", "--auto-approve", "--timeout", "25", env=ENV)
            if first.returncode != 0:
                return [f"{case.label}: first apply failed: {first.stdout}{first.stderr}"]
            write_repo(repo, contract, crash_specs(tag, case.names, shrink=True))
        hold: HoldAnswer | None = None
        if case.phase == "after":
            gateway = _gateway(server)
            hold = HoldAnswer(gateway.app, targets)
            gateway.app = hold
        else:
            server.set_faults(latency=[{"method": m, "path": p, "ms": 400} for m, p, _ in targets],
                              rules=[{"method": m, "path": p, "action": "drop", "count": 1} for m, p, _ in targets])
        process = _popen_apply(server, repo)
        try:
            if hold is not None:
                reached = _wait(hold.all_landed, process)
            else:
                reached = _wait(lambda: all(_arrived(server, *t) for t in targets), process)
            process.send_signal(signal.SIGKILL)
            out, err = process.communicate(timeout=30)
            outputs += [out, err]
            if not reached:
                return [f"{case.label}: apply never made those requests (exit {process.returncode}): {err[-800:]}"]
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
            if hold is not None:
                hold.release.set()
        if hold is None:
            # The held requests are discarded, not processed late: wait for the drops before clearing.
            if not _until(lambda: sum(r["fault"] == "drop" for r in server.requests()) >= len(targets)):
                return [f"{case.label}: the held requests were not dropped"]
        server.clear_faults()
        uploads_before = len(_uploads_reaching_cps(server))
        rerun = cli(server, repo, "apply", "--auto-approve", "--timeout", "25", env=ENV)
        outputs += [rerun.stdout, rerun.stderr]
        if rerun.returncode != 0:
            return [f"{case.label}: rerun exit {rerun.returncode}: {rerun.stdout[-1500:]}{rerun.stderr[-800:]}"]
        problems = asyncio.run(_converged(server, repo, contract, len(case.names)))
        uploads = _uploads_reaching_cps(server)
        if len(uploads) != (1 if "shop" in case.names else 0):
            problems.append(f"{len(uploads)} uploads reached CPS (expected exactly one; {uploads_before} "
                            f"before the rerun): {[(r['status'], r['time']) for r in uploads]}")
        leaks = scan_for_secrets(secrets_of(server.credentials), texts=outputs, paths=[repo])
        problems += [f"credential leaked: {finding}" for finding in leaks]
    return [f"{case.label}: {p}" for p in problems]


def _until(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _uploads_reaching_cps(server: SandboxServer) -> list[dict[str, Any]]:
    """Upload requests CPS processed: all but those the drop rule discarded (a held answer counts:
    it landed). One is right; a second means the rerun uploaded again, accepted or not."""
    return [r for r in server.requests() if r["method"] == "POST" and fnmatch.fnmatchcase(r["path"], UPLOAD)
            and r["fault"] is None]


def cases() -> list[Case]:
    return [*DETERMINISTIC, *random_cases(SEED, RANDOM_CASES)]


def test_sigkill_mid_request_then_rerun_converges(tmp_path: Path) -> None:
    """Every write killed with its answer lost, plus a seeded random cut (before or after CPS saw
    it): one enrollment per spec, settled state, one upload, empty plan after the rerun."""
    chosen = cases()
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda ic: crash_case(tmp_path, *ic), enumerate(chosen)))
    problems = [p for case in results for p in case]
    assert not problems, f"seed {SEED}, cases {[c.label for c in chosen]}:\n" + "\n".join(problems)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_cases_are_reproducible_and_distinct(seed: int) -> None:
    assert random_cases(seed, 3) == random_cases(seed, 3)
    drawn = random_cases(seed, 6)
    assert len({c.targets + (c.phase,) for c in drawn}) == 6
    assert not {(op, c.phase) for c in drawn for op, _ in c.targets} & {
        (op, c.phase) for c in DETERMINISTIC for op, _ in c.targets}
