"""Two `reconcile apply` processes on one repository: the second fails fast naming the holder, or
waits with --lock-timeout; nothing interleaves (no CPS request from the waiting one while the
other works, state serial strictly increasing in one lineage, one enrollment per spec, and the
later run finds nothing left to do). Real subprocesses, real HTTPS, one sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import StateError
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from reconciler.state.store import StateStore
from tests.e2e.test_apply_e2e import cli, dv_hook, write_repo

STATE = Path("state") / "reconcile-state.json"
# A DV publish hook that says it is running, then blocks until the test lets it go: the apply that
# runs it holds the state lock meanwhile.
BLOCKING_HOOK = 'touch "in-hook-$RECONCILE_ENROLLMENT"; while [ ! -f go ]; do sleep 0.02; done'
ENV = {"RECONCILE_POLL_INTERVAL": "0.02"}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(speed=20000, engine=EngineConfig(validation_policy="trust-ack")) as sandbox:
        yield sandbox


def popen(server: SandboxServer, repo: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AKAMAI_EDGERC": str(server.edgerc), "AKAMAI_EDGERC_SECTION": "sandbox",
           "RECONCILE_CA_BUNDLE": server.ca_bundle, **ENV}
    return subprocess.Popen([sys.executable, "-m", "reconciler", "--no-color", "apply", "--auto-approve",
                             "--timeout", "25", *args], cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition: Any, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


class SerialWatch:
    """Records every (lineage, serial) the state file shows while it runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.003):
            try:
                state = StateStore(self.path).read()
            except (OSError, StateError):
                continue  # not there yet (writes are atomic renames, so never half-written)
            if state.serial == 0:
                continue
            key = (state.lineage, state.serial)
            if not self.seen or self.seen[-1] != key:
                self.seen.append(key)

    def __enter__(self) -> SerialWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def problems(self) -> list[str]:
        lineages = {lineage for lineage, _ in self.seen}
        serials = [serial for _, serial in self.seen]
        found = []
        if len(lineages) > 1:
            found.append(f"state lineage changed: {lineages}")
        if serials != sorted(set(serials)):
            found.append(f"state serial not strictly increasing: {serials}")
        return found


def creates(server: SandboxServer, contract: str) -> list[dict[str, Any]]:
    return [r for r in server.requests() if r["method"] == "POST" and r["path"] == "/cps/v2/enrollments"
            and r["status"] in (200, 201, 202) and contract.removeprefix("ctr_") in r["query"]]


def test_second_apply_fails_fast_naming_the_holder_or_waits_with_lock_timeout(server: SandboxServer,
                                                                              tmp_path: Path) -> None:
    """While one apply holds the lock (blocked in its DV hooks), a second fails at once naming it,
    a third (--lock-timeout) waits without a single CPS request, then finds nothing left to do."""
    repo = tmp_path / "repo"
    specs = [dv_hook("www", "www.wait.example.com"), dv_hook("api", "api.wait.example.com")]
    for spec in specs:  # both block, so the first apply is quiet while it holds the lock
        spec["validation"]["hook"]["publish"] = BLOCKING_HOOK
    write_repo(repo, "ctr_1-WAIT", specs)
    with SerialWatch(repo / STATE) as watch:
        first = popen(server, repo)
        waiting: subprocess.Popen[str] | None = None
        try:
            assert wait_for(lambda: {"in-hook-www", "in-hook-api"} <= {p.name for p in repo.iterdir()}
                            or first.poll() is not None), "the first apply never reached its hooks"
            assert first.poll() is None, first.communicate()
            state_while_held = (repo / STATE).read_bytes()
            requests_while_held = len(server.requests())
            waiting = popen(server, repo, "--lock-timeout", "60")
            waiting_since = time.monotonic()
            refused = cli(server, repo, "apply", "--auto-approve", env=ENV)
            refused_after = time.monotonic() - waiting_since
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert f"is locked (operation=apply, pid={first.pid}, host=" in refused.stderr, refused.stderr
            assert "--lock-timeout SECONDS" in refused.stderr
            assert refused_after < 10, f"failing fast took {refused_after:.1f}s"
            # Long enough for the waiting one to have started and reached the lock.
            time.sleep(max(0.0, 1.5 - (time.monotonic() - waiting_since)))
            assert waiting.poll() is None, waiting.communicate()
            assert len(server.requests()) == requests_while_held, "a locked-out apply talked to CPS"
            assert (repo / STATE).read_bytes() == state_while_held, "a locked-out apply wrote the state"
        finally:
            (repo / "go").touch()
            outputs = [p.communicate(timeout=60) for p in (first, waiting) if p is not None]
    assert waiting is not None
    (first_out, first_err), (waiting_out, waiting_err) = outputs
    assert first.returncode == 0, first_out + first_err
    assert waiting.returncode == 0, waiting_out + waiting_err
    assert "Apply complete: 2 done." in first_out, first_out
    assert "No changes" in waiting_out, waiting_out  # it planned only after the first had finished
    assert len(creates(server, "ctr_1-WAIT")) == 2
    assert not watch.problems(), watch.problems()
    assert len(watch.seen) >= 3


def test_two_applies_started_together_serialise(server: SandboxServer, tmp_path: Path) -> None:
    """No choreography: both start at once with --lock-timeout; one does the work, the other
    finds it done; one enrollment per spec; state serial strictly increasing."""
    repo = tmp_path / "repo"
    write_repo(repo, "ctr_1-RACE", [dv_hook("www", "www.race.example.com"), dv_hook("api", "api.race.example.com")])
    with SerialWatch(repo / STATE) as watch:
        runs = [popen(server, repo, "--lock-timeout", "60") for _ in range(2)]
        outputs = [p.communicate(timeout=90) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    stdouts = sorted(out for out, _ in outputs)
    assert sum("Apply complete: 2 done." in out for out in stdouts) == 1, stdouts
    assert sum("No changes" in out for out in stdouts) == 1, stdouts
    assert len(creates(server, "ctr_1-RACE")) == 2
    assert not watch.problems(), watch.problems()
