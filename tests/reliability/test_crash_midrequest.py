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
enrollment per spec, state settled and matching CPS, one accepted upload ever, an empty plan.
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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from reconciler.sandbox.app import Gateway
from reconciler.sandbox.testing import SandboxServer
from tests.e2e.test_apply_e2e import _converged, cli, crash_specs, write_repo
from tests.secretscan import scan_for_secrets, secrets_of

CHANGE = "/cps/v2/enrollments/*/changes/*"
# operation -> (method, path glob, the specs whose workflow makes that request, needs a first apply)
OPERATIONS: dict[str, tuple[str, str, tuple[str, ...], bool]] = {
    "create": ("POST", "/cps/v2/enrollments", ("www",), False),
    "update": ("PUT", "/cps/v2/enrollments/*", ("www",), True),
    "ack-dv": ("POST", f"{CHANGE}/input/update/lets-encrypt-challenges-completed", ("www",), False),
    "upload": ("POST", f"{CHANGE}/input/update/third-party-cert-and-trust-chain", ("shop",), False),
    "ack-change-management": ("POST", f"{CHANGE}/input/update/change-management-ack", ("shop",), False),
    "poll": ("GET", CHANGE, ("www", "shop"), False),
}
DETERMINISTIC = [("create", "after"), ("update", "after"), ("ack-dv", "after"), ("upload", "after"),
                 ("ack-change-management", "after"), ("create", "before")]
SEED = int(os.environ.get("RECONCILE_CRASH_SEED", "20261129"))
RANDOM_CASES = 2
UPLOAD = f"{CHANGE}/input/update/third-party-cert-and-trust-chain"
ENV = {"RECONCILE_POLL_INTERVAL": "0.02"}


def random_points(seed: int, count: int) -> list[tuple[str, str, int]]:
    """``count`` distinct (operation, phase, occurrence) the deterministic list lacks, reads included
    (a change-status poll, killed at its 1st to 3rd occurrence)."""
    rng = random.Random(seed)
    pool = sorted((op, phase) for op in OPERATIONS for phase in ("before", "after")
                  if (op, phase) not in DETERMINISTIC)
    return [(op, phase, rng.randint(1, 3) if op == "poll" else 1) for op, phase in rng.sample(pool, count)]


@dataclass
class HoldAnswer:
    """ASGI layer between the sandbox's gateway and CPS: lets the ``occurrence``-th matching request
    be processed, then holds its answer until released (it then goes to a client killed meanwhile)."""

    inner: Any
    method: str
    path: str
    occurrence: int = 1
    seen: int = 0
    landed: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != self.method \
                or not fnmatch.fnmatchcase(scope["path"], self.path):
            await self.inner(scope, receive, send)
            return
        self.seen += 1
        if self.seen != self.occurrence:
            await self.inner(scope, receive, send)
            return

        async def held(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.landed.set()
                while not self.release.is_set():
                    await anyio.sleep(0.01)
            await send(message)

        await self.inner(scope, receive, held)


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


def crash_case(root: Path, index: int, op: str, phase: str, occurrence: int = 1) -> list[str]:
    """One kill mid-request and the rerun; problems found (empty: converged)."""
    method, path, names, update = OPERATIONS[op]
    label = f"{op}/{phase}#{occurrence}"
    tag, contract = f"m{index}", f"ctr_1-MID{index}"
    repo = root / tag
    outputs: list[str] = []
    with SandboxServer(speed=20000) as server:
        write_repo(repo, contract, crash_specs(tag, names))
        if update:
            first = cli(server, repo, "apply", "--auto-approve", "--timeout", "25", env=ENV)
            if first.returncode != 0:
                return [f"{label}: first apply failed: {first.stdout}{first.stderr}"]
            write_repo(repo, contract, crash_specs(tag, names, shrink=True))
        hold: HoldAnswer | None = None
        if phase == "after":
            gateway = _gateway(server)
            hold = HoldAnswer(gateway.app, method, path, occurrence)
            gateway.app = hold
        else:
            server.set_faults(latency=[{"method": method, "path": path, "ms": 400}],
                              rules=[{"method": method, "path": path, "action": "drop", "count": 1}])
        process = _popen_apply(server, repo)
        try:
            if hold is not None:
                reached = _wait(hold.landed.is_set, process)
            else:
                reached = _wait(lambda: _arrived(server, method, path, occurrence), process)
            process.send_signal(signal.SIGKILL)
            out, err = process.communicate(timeout=30)
            outputs += [out, err]
            if not reached:
                return [f"{label}: apply never made that request (exit {process.returncode}): {err[-800:]}"]
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
            if hold is not None:
                hold.release.set()
        if hold is None:
            # The held request is discarded, not processed late: wait for the drop before clearing.
            if not _until(lambda: any(r["fault"] == "drop" for r in server.requests())):
                return [f"{label}: the held request was not dropped"]
        server.clear_faults()
        mutations_before = len(_landed_uploads(server, hold))
        rerun = cli(server, repo, "apply", "--auto-approve", "--timeout", "25", env=ENV)
        outputs += [rerun.stdout, rerun.stderr]
        if rerun.returncode != 0:
            return [f"{label}: rerun exit {rerun.returncode}: {rerun.stdout[-1500:]}{rerun.stderr[-800:]}"]
        problems = asyncio.run(_converged(server, repo, contract, len(names)))
        landed = _landed_uploads(server, hold)
        if len(landed) != (1 if "shop" in names else 0):
            problems.append(f"{len(landed)} uploads accepted by CPS (expected exactly one; "
                            f"{mutations_before} before the rerun)")
        leaks = scan_for_secrets(secrets_of(server.credentials), texts=outputs, paths=[repo])
        problems += [f"credential leaked: {finding}" for finding in leaks]
    return [f"{label}: {p}" for p in problems]


def _until(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _landed_uploads(server: SandboxServer, hold: HoldAnswer | None) -> list[dict[str, Any]]:
    """Uploads CPS accepted: answered 200, plus the held one whose answer never left."""
    uploads = [r for r in server.requests() if r["method"] == "POST" and fnmatch.fnmatchcase(r["path"], UPLOAD)]
    accepted = [r for r in uploads if r["status"] == 200]
    if hold is not None and hold.path == UPLOAD and hold.landed.is_set():
        accepted += [r for r in uploads if r["status"] is None and r["fault"] is None][:1]
    return accepted


def cases() -> Iterator[tuple[str, str, int]]:
    yield from ((op, phase, 1) for op, phase in DETERMINISTIC)
    yield from random_points(SEED, RANDOM_CASES)


def test_sigkill_mid_request_then_rerun_converges(tmp_path: Path) -> None:
    """Every write killed with its answer lost (and some before CPS saw them), plus seeded random
    points: one enrollment per spec, settled state, one upload, empty plan after the rerun."""
    chosen = list(cases())
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda ic: crash_case(tmp_path, ic[0], *ic[1]), enumerate(chosen)))
    problems = [p for case in results for p in case]
    assert not problems, f"seed {SEED}, cases {chosen}:\n" + "\n".join(problems)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_points_are_reproducible(seed: int) -> None:
    assert random_points(seed, RANDOM_CASES) == random_points(seed, RANDOM_CASES)
    drawn = random_points(seed, 4)
    assert len(set(drawn)) == 4 and not {(op, phase) for op, phase, _ in drawn} & set(DETERMINISTIC)
