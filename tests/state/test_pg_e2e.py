"""The postgres state backend end to end: the CLI as real subprocesses, real HTTPS to a sandbox, a
real PostgreSQL server. The life cycle on both backends; two applies on one workspace, the holder
SIGKILLed; the server stopped and crashed mid-apply; the DSN's password in nothing a run leaves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import load_config
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from reconciler.state.backends import open_store
from tests.conftest import DSN_ENV, PgWorkspace
from tests.e2e.test_apply_e2e import (
    QUICK_SIGNER,
    _crash_case,
    cli,
    dv_hook,
    state_of,
    third_party,
    write_repo,
)
from tests.pgserver import PASSWORD, SUPER_PASSWORD, PgCluster
from tests.secretscan import SecretScan, scan_for_secrets, secrets_of

PG_SECRETS = {"pg_password": PASSWORD, "pg_super_password": SUPER_PASSWORD}
# Dumps the hook's whole environment into the repository (scanned): hooks must not get the DSN.
ENV_DUMP = (f"{sys.executable} -c \"import os, json; "
            "open('hook-env.json', 'a').write(json.dumps(dict(os.environ)) + '\\n')\"")
BLOCKING_HOOK = 'touch "in-hook-$RECONCILE_ENROLLMENT"; while [ ! -f go ]; do sleep 0.02; done'


def _creates(server: SandboxServer, contract: str) -> int:
    return len([r for r in server.requests() if r["method"] == "POST" and r["path"] == "/cps/v2/enrollments"
                and r["status"] in (200, 201, 202) and contract.removeprefix("ctr_") in r["query"]])


def _uploads(server: SandboxServer) -> int:
    return len([r for r in server.requests() if r["method"] == "POST" and r["status"] == 200
                and r["path"].endswith("/third-party-cert-and-trust-chain")])


@pytest.fixture
def fast_server() -> Iterator[SandboxServer]:
    # A CPS hour in 0.18 s; the DV hooks here publish to files: trust the acknowledgement, explicitly.
    with SandboxServer(speed=20000, engine=EngineConfig(validation_policy="trust-ack")) as server:
        yield server


def test_lifecycle_apply_plan_status_import_on_each_backend(fast_server: SandboxServer, tmp_path: Path,
                                                            state_backend: dict[str, str],
                                                            secret_scan: SecretScan) -> None:
    """apply (DV hook + dual-stack third-party), plan empty, status, a SAN change applied, import of
    the same enrollments into a second state, plan empty there: the same on both backends."""
    server, repo = fast_server, tmp_path / "repo"
    secret_scan.add_secrets({**secrets_of(server.credentials), **PG_SECRETS})
    secret_scan.add_path(tmp_path)
    www = dv_hook("www", "www.life.example.com")
    www["validation"]["hook"]["publish"] += f"; {ENV_DUMP}"
    specs = [www, third_party("shop", "shop.life.example.com", QUICK_SIGNER)]
    write_repo(repo, "ctr_1-LIFE", specs, state_backend)
    outputs = []
    applied = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
    outputs.append(applied)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 2 done." in applied.stdout
    plan = cli(server, repo, "-vv", "plan", "--detailed-exitcode")  # psycopg's DEBUG records too
    outputs.append(plan)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    status = cli(server, repo, "status", "--format", "json")
    outputs.append(status)
    assert status.returncode == 0, status.stderr
    assert "www.life.example.com" in status.stdout and "shop.life.example.com" in status.stdout

    www["sans"] = ["www.life.example.com", "api.life.example.com"]
    write_repo(repo, "ctr_1-LIFE", specs, state_backend)
    again = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
    outputs.append(again)
    assert again.returncode == 0 and "www: update (spec-changed)" in again.stdout, again.stdout + again.stderr
    outputs.append(cli(server, repo, "plan", "--detailed-exitcode"))
    assert outputs[-1].returncode == 0, outputs[-1].stdout

    state = state_of(repo)["entries"]
    assert {n: (e["intent"], e["change"]) for n, e in state.items()} == {"www": (None, None), "shop": (None, None)}
    on_disk = (repo / "state" / "reconcile-state.json").exists()
    assert on_disk == (state_backend["backend"] == "file")  # postgres: nothing of the state in the repository
    assert DSN_ENV not in (repo / "hook-env.json").read_text()

    second = tmp_path / "second"
    other = {**state_backend, "workspace": state_backend["workspace"] + "-2"} \
        if state_backend["backend"] == "postgres" else state_backend
    write_repo(second, "ctr_1-LIFE", [], other)
    imported = cli(server, second, "import", "--all")
    outputs.append(imported)
    assert imported.returncode == 0 and "2 imported" in imported.stdout, imported.stdout + imported.stderr
    assert {e["enrollment_id"] for e in state_of(second)["entries"].values()} == \
        {e["enrollment_id"] for e in state.values()}
    assert state_of(second)["lineage"] != state_of(repo)["lineage"]
    replan = cli(server, second, "plan", "--detailed-exitcode")
    outputs.append(replan)
    assert replan.returncode == 0, replan.stdout + replan.stderr
    if state_backend["backend"] == "postgres":
        history = cli(server, repo, "state", "history")
        assert history.returncode == 0 and len(history.stdout.splitlines()) > 5, history.stdout
        outputs.append(history)
    for i, done in enumerate(outputs):
        secret_scan.add_text(f"run {i}", done.stdout + done.stderr)


def test_two_applies_on_one_workspace_then_the_holder_is_killed(fast_server: SandboxServer, tmp_path: Path,
                                                                pg_workspace: PgWorkspace) -> None:
    """While one apply holds the workspace (blocked in its DV hooks), a second fails at once naming
    it and a third waits (--lock-timeout), saying for whom; SIGKILL of the holder hands the lock to
    the waiting one at once, which finishes the work: one enrollment per spec, an empty plan."""
    server, repo = fast_server, tmp_path / "repo"
    specs = [dv_hook("www", "www.kill.example.com"), dv_hook("api", "api.kill.example.com")]
    for spec in specs:
        spec["validation"]["hook"]["publish"] = BLOCKING_HOOK
    write_repo(repo, "ctr_1-PGKILL", specs, pg_workspace.config)
    env = {**os.environ, "AKAMAI_EDGERC": str(server.edgerc), "AKAMAI_EDGERC_SECTION": "sandbox",
           "RECONCILE_CA_BUNDLE": server.ca_bundle, "RECONCILE_POLL_INTERVAL": "0.02"}

    def popen(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "reconciler", "--no-color", "apply", "--auto-approve",
                                 "--timeout", "25", *args], cwd=repo, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    store = open_store(load_config(repo / "reconcile.yaml"))
    first = popen()
    waiting: subprocess.Popen[str] | None = None
    said: _StderrTail | None = None
    try:
        deadline = time.monotonic() + 30
        while not {"in-hook-www", "in-hook-api"} <= {p.name for p in repo.iterdir()}:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first apply never reached its hooks"
            time.sleep(0.02)
        started = time.monotonic()
        refused = cli(server, repo, "apply", "--auto-approve")
        assert time.monotonic() - started < 10
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert (f"state postgres workspace '{pg_workspace.name}' is locked (operation=apply, pid={first.pid}, "
                in refused.stderr), refused.stderr
        waiting = popen("--lock-timeout", "60")
        holder = store.holder()
        assert holder is not None and holder["pid"] == first.pid
        # Until it says it waits (a fixed sleep raced a slow start on a loaded machine).
        said = _StderrTail(waiting)
        assert said.wait_for("waiting up to 60s for it", 60), said.text()
        assert waiting.poll() is None
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        while (store.holder() or {}).get("pid") != waiting.pid:
            assert time.monotonic() - killed_at < 5, "the killed holder's lock was not freed"
            time.sleep(0.02)
        handed_over = time.monotonic() - killed_at
    finally:
        (repo / "go").touch()
        if first.poll() is None:
            first.kill()
        out, err = waiting.communicate(timeout=90) if waiting is not None else ("", "")
        err = (said.text() if said is not None else "") + (err or "")
    assert waiting.returncode == 0, out + err
    assert f"is locked (operation=apply, pid={first.pid}" in err and "waiting up to 60s for it" in err, err
    assert handed_over < 3, f"lock handed over {handed_over:.2f}s after the kill"
    assert _creates(server, "ctr_1-PGKILL") == 2
    assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0


class _StderrTail:
    """Reads a process's stderr in a thread, so a test can wait for a line without a fixed sleep."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._lines: list[str] = []
        self._seen = threading.Condition()
        assert process.stderr is not None
        stream = process.stderr
        process.stderr = None  # communicate() later reads stdout only; the thread has stderr
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._seen:
                self._lines.append(line)
                self._seen.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        with self._seen:
            return self._seen.wait_for(lambda: any(text in line for line in self._lines), timeout)

    def text(self) -> str:
        self._thread.join(timeout=0.1)
        with self._seen:
            return "".join(self._lines)


@pytest.fixture
def own_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL server this test may stop, crash and restart."""
    try:
        cluster = PgCluster().__enter__()
    except Exception as exc:
        reason = f"NO POSTGRESQL SERVER: the postgres state backend is NOT TESTED here ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield cluster
    finally:
        cluster.__exit__()


def test_server_stopped_or_crashed_mid_apply_loses_nothing(tmp_path: Path, own_cluster: PgCluster,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped by the signer hook (after the create was recorded, before the upload's intent): the
    apply stops with a clear error and uploads nothing; after a restart the rerun converges with
    one upload. Then a crash (SIGKILL at create:posted, server killed too): the intent written
    before the create is there after the restart, and the rerun adopts instead of creating again."""
    monkeypatch.setenv(DSN_ENV, own_cluster.dsn())
    texts: list[str] = []
    with SandboxServer(speed=20000) as server:
        repo = tmp_path / "stopped"
        shop = third_party("shop", "shop.stop.example.com",
                           f"if [ ! -f stopped ]; then touch stopped; {own_cluster.shell_command('stop -m fast')}; "
                           f"fi; {QUICK_SIGNER}")
        shop["dual_stack"] = False
        write_repo(repo, "ctr_1-PGSTOP", [shop], {"backend": "postgres", "workspace": "stopped"})
        stopped = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
        texts += [stopped.stdout, stopped.stderr]
        assert stopped.returncode == 1, stopped.stdout + stopped.stderr
        assert "postgres workspace 'stopped': cannot write the state: " in stopped.stderr, stopped.stderr
        assert "the session holding the state lock is gone, and the lock with it: this run stops here" \
            in stopped.stderr, stopped.stderr
        assert "Traceback" not in stopped.stderr
        assert _uploads(server) == 0  # the upload's intent could not be written: nothing was uploaded
        down = cli(server, repo, "plan")
        texts += [down.stdout, down.stderr]
        assert down.returncode == 1 and "cannot connect to the state database ($RECONCILE_STATE_DSN)" in down.stderr
        own_cluster.start()
        kept = state_of(repo)["entries"]["shop"]
        assert kept["enrollment_id"] is not None and kept["intent"] is None
        rerun = cli(server, repo, "apply", "--auto-approve", "--timeout", "25")
        texts += [rerun.stdout, rerun.stderr]
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert _uploads(server) == 1 and _creates(server, "ctr_1-PGSTOP") == 1
        assert state_of(repo)["entries"]["shop"]["enrollment_id"] == kept["enrollment_id"]
        assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0

        crashed = tmp_path / "crashed"
        write_repo(crashed, "ctr_1-PGCRASH", [dv_hook("www", "www.crash.example.com")],
                   {"backend": "postgres", "workspace": "crashed"})
        killed = cli(server, crashed, "apply", "--auto-approve", "--timeout", "25",
                     env={"RECONCILE_TEST_KILL_AT": "create:posted"})
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        own_cluster.stop("immediate")  # a server crash: only what was committed survives
        own_cluster.start()
        intent = state_of(crashed)["entries"]["www"]["intent"]
        assert intent is not None and intent["op"] == "creating", state_of(crashed)
        resumed = cli(server, crashed, "apply", "--auto-approve", "--timeout", "25")
        texts += [resumed.stdout, resumed.stderr]
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert _creates(server, "ctr_1-PGCRASH") == 1
        assert cli(server, crashed, "plan", "--detailed-exitcode").returncode == 0
    findings = scan_for_secrets(PG_SECRETS, texts=texts, paths=[tmp_path])
    assert not findings, "\n".join(map(str, findings))


BOUNDARIES = {"create:intent": ("www",), "create:posted": ("www", "shop"), "upload:intent": ("shop",),
              "upload:posted": ("shop",)}


def test_sigkill_at_the_intent_boundaries_then_rerun_converges_on_postgres(tmp_path: Path,
                                                                          pg_workspace: PgWorkspace) -> None:
    """The crash-resume scenario of tests/e2e (SIGKILL where an intent is written or a call was made
    but not recorded), with the state in PostgreSQL: no duplicate, one upload, an empty plan."""
    run_id = uuid.uuid4().hex[:8]
    with SandboxServer(speed=20000) as server, ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(
            lambda ib: _crash_case(server, tmp_path, 100 + ib[0], ib[1][0], ib[1][1], False,
                                   {**pg_workspace.config, "workspace": f"{pg_workspace.name}-{run_id}-{ib[0]}"}),
            enumerate(BOUNDARIES.items())))
    problems = [p for case in results for p in case]
    assert not problems, "\n".join(problems)


