"""Replacements, renames and successors end to end: the CLI as a subprocess against a sandbox over
HTTPS, and a watcher that reads the sandbox's deployments all along to prove that every name stays
served by a deployed certificate while one enrollment takes over from another."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from reconciler.config import load_config
from reconciler.cps.client import CpsClient
from reconciler.plan.pipeline import build_plan
from reconciler.plan.planner import PlanOptions
from reconciler.sandbox.testing import SandboxServer
from reconciler.spec.loader import load_specs
from reconciler.state.store import StateStore
from tests.e2e.test_apply_e2e import QUICK_SIGNER, cli, dv_hook, state_of, third_party, write_repo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    # Virtual time runs 20000x on its own: a CPS hour passes in 0.18 s of real time.
    with SandboxServer(speed=20000) as sandbox:
        yield sandbox


def engine(server: SandboxServer, http: httpx.Client | None = None) -> list[dict[str, Any]]:
    client = http or httpx.Client(verify=ssl.create_default_context(cafile=server.ca_bundle))
    enrollments: list[dict[str, Any]] = client.get(f"{server.base_url}/_sandbox/state").json()["engine"]["enrollments"]
    return enrollments


class CoverageWatch:
    """Reads the sandbox's deployments in a loop and records every moment one of ``names`` had no
    certificate on production. An enrollment whose DELETE CPS accepted counts as gone at once
    (production takes it off the network some time later). Armed once every name is served."""

    def __init__(self, server: SandboxServer, names: set[str]) -> None:
        self.server = server
        self.names = names
        self.gaps: list[tuple[str, list[str]]] = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        armed = False
        with httpx.Client(verify=ssl.create_default_context(cafile=self.server.ca_bundle)) as http:
            while not self._stop.is_set():
                served: set[str] = set()
                for e in engine(self.server, http):
                    production = e["served"].get("production")
                    if production and e["deleteAt"] is None:
                        served |= set(production["names"])
                missing = sorted(self.names - served)
                if not missing:
                    armed = True
                elif armed:
                    self.gaps.append((self.server.now(), missing))
                self.polls += 1
                self._stop.wait(0.002)

    def __enter__(self) -> CoverageWatch:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def writes(server: SandboxServer, eid: int | None = None) -> list[dict[str, Any]]:
    """Every request that could change CPS (optionally: about one enrollment)."""
    return [r for r in server.requests() if r["method"] != "GET" and r["path"].startswith("/cps/")
            and (eid is None or r["path"].rstrip("/").endswith(f"/enrollments/{eid}")
                 or f"/enrollments/{eid}/" in r["path"])]


def deletes_after_successor(server: SandboxServer, old: int, new: int) -> list[str]:
    """Problems: a DELETE of ``old`` CPS received before ``new`` served production."""
    record = next(e for e in engine(server) if e["id"] == new)
    production = record["served"].get("production")
    if production is None:
        return [f"enrollment {new} is not on production"]
    since = production["deployed"]
    early = [r for r in writes(server, old) if r["method"] == "DELETE" and r["virtualTime"] < since]
    return [f"DELETE of {old} at {r['virtualTime']}, before {new} was on production ({since})" for r in early]


def apply(server: SandboxServer, repo: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return cli(server, repo, "apply", "--auto-approve", "--timeout", "30", *extra, env=env)


def test_in_place_replacement_creates_first_and_deletes_last(server: SandboxServer, tmp_path: Path) -> None:
    repo, contract = tmp_path / "repo", "ctr_1-REPL"
    www = dv_hook("www", "www.r1.example.com", ["www.r1.example.com", "r1.example.com"])
    write_repo(repo, contract, [www])
    assert apply(server, repo).returncode == 0
    old = state_of(repo)["entries"]["www"]["enrollment_id"]
    server.clear_requests()

    write_repo(repo, contract, [{**www, "sni_only": False}])
    planned = cli(server, repo, "plan")
    assert "+/- www: replace (immutable-field)" in planned.stdout, planned.stdout
    assert f"! www@{old}: delete (replaced): deletes are off by default" in planned.stdout

    with CoverageWatch(server, {"www.r1.example.com", "r1.example.com"}) as watch:
        done = apply(server, repo, "--allow-delete")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not watch.gaps and watch.polls > 20, (watch.gaps, watch.polls)
    entries = state_of(repo)["entries"]
    new = entries["www"]["enrollment_id"]
    assert new != old and sorted(entries) == ["www"]  # apply waited until CPS had removed the old one
    assert all(e["id"] != old for e in engine(server))
    assert [r["method"] for r in writes(server, old)] == ["DELETE"]
    assert deletes_after_successor(server, old, new) == []
    assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0


def test_renaming_a_spec_moves_its_binding_and_leaves_cps_alone(server: SandboxServer, tmp_path: Path) -> None:
    repo, contract = tmp_path / "repo", "ctr_1-MOVE"
    write_repo(repo, contract, [dv_hook("tty1", "tty1.example.com")])
    assert apply(server, repo).returncode == 0
    eid = state_of(repo)["entries"]["tty1"]["enrollment_id"]
    server.clear_requests()

    write_repo(repo, contract, [dv_hook("tty1-renamed", "tty1.example.com")])
    moved = apply(server, repo, "--allow-delete")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "→ tty1-renamed: move (renamed)" in moved.stdout
    assert writes(server) == []
    assert {n: e["enrollment_id"] for n, e in state_of(repo)["entries"].items()} == {"tty1-renamed": eid}
    assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0

    # moved_from says it explicitly (what settles a rename that detection finds ambiguous).
    final = {**dv_hook("tty1-final", "tty1.example.com"), "moved_from": "tty1-renamed"}
    write_repo(repo, contract, [final])
    again = apply(server, repo)
    assert again.returncode == 0 and "tty1-final: move (moved-from)" in again.stdout, again.stdout
    assert {n: e["enrollment_id"] for n, e in state_of(repo)["entries"].items()} == {"tty1-final": eid}
    assert writes(server) == []
    assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0


def test_type_switch_under_a_new_name_moves_then_replaces(server: SandboxServer, tmp_path: Path) -> None:
    repo, contract = tmp_path / "repo", "ctr_1-SWITCH"
    names = ["shop.sw.example.com", "pay.shop.sw.example.com"]
    write_repo(repo, contract, [dv_hook("shop", names[0], names)])
    assert apply(server, repo).returncode == 0
    old = state_of(repo)["entries"]["shop"]["enrollment_id"]

    write_repo(repo, contract, [third_party("shop-tp", names[0], QUICK_SIGNER)])
    with CoverageWatch(server, set(names)) as watch:
        done = apply(server, repo, "--allow-delete")
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("→ shop-tp: move (renamed)", "+/- shop-tp: replace (immutable-field)",
                 f"- shop-tp@{old}: delete (replaced)"):
        assert line in done.stdout, done.stdout
    assert not watch.gaps and watch.polls > 20, watch.gaps
    new = state_of(repo)["entries"]["shop-tp"]["enrollment_id"]
    assert deletes_after_successor(server, old, new) == []
    creates = [r for r in writes(server) if r["method"] == "POST" and r["path"] == "/cps/v2/enrollments"]
    assert "allow-duplicate-cn=true" in creates[-1]["query"]
    assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0


def test_cn_change_under_a_new_name_deletes_the_old_one_after_the_new_is_deployed(
        server: SandboxServer, tmp_path: Path) -> None:
    repo, contract = tmp_path / "repo", "ctr_1-CN"
    write_repo(repo, contract, [dv_hook("api", "api.cn.example.com", ["api.cn.example.com", "cn.example.com"])])
    assert apply(server, repo).returncode == 0
    old = state_of(repo)["entries"]["api"]["enrollment_id"]

    write_repo(repo, contract, [dv_hook("apex", "cn.example.com", ["cn.example.com", "api.cn.example.com"])])
    with CoverageWatch(server, {"api.cn.example.com", "cn.example.com"}) as watch:
        done = apply(server, repo, "--allow-delete")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "- api: delete (removed-from-specs)" in done.stdout and "deleted after apex" in done.stdout
    assert not watch.gaps and watch.polls > 20, watch.gaps
    assert deletes_after_successor(server, old, state_of(repo)["entries"]["apex"]["enrollment_id"]) == []
    assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0


def test_a_successor_that_waits_on_a_person_leaves_the_old_enrollment_untouched(
        server: SandboxServer, tmp_path: Path) -> None:
    repo, contract = tmp_path / "repo", "ctr_1-HELD"
    names = ["held.example.com", "pay.held.example.com"]
    write_repo(repo, contract, [dv_hook("held", names[0], names)])
    assert apply(server, repo).returncode == 0
    old = state_of(repo)["entries"]["held"]["enrollment_id"]
    server.clear_requests()

    signer_less = {k: v for k, v in third_party("held", names[0]).items() if k != "signer"}
    write_repo(repo, contract, [signer_less])
    waiting = apply(server, repo, "--allow-delete")
    assert waiting.returncode == 3, waiting.stdout + waiting.stderr
    assert f"held@{old}: held - enrollment {old} left untouched: its successor held is waiting" in waiting.stdout
    assert writes(server, old) == []
    assert "production" in next(e for e in engine(server) if e["id"] == old)["served"]

    write_repo(repo, contract, [third_party("held", names[0], QUICK_SIGNER)])
    with CoverageWatch(server, set(names)) as watch:
        done = apply(server, repo, "--allow-delete")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not watch.gaps
    assert deletes_after_successor(server, old, state_of(repo)["entries"]["held"]["enrollment_id"]) == []
    assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0


def test_lost_state_with_duplicate_cns_is_refused_not_created_again(server: SandboxServer, tmp_path: Path) -> None:
    repo, contract = tmp_path / "repo", "ctr_1-DUP"
    specs = [{**dv_hook(name, "dup.example.com"), "allow_duplicate_common_name": True} for name in ("a", "b")]
    write_repo(repo, contract, specs)
    assert apply(server, repo).returncode == 0
    shutil.rmtree(repo / "state")  # the state is lost
    server.clear_requests()
    planned = cli(server, repo, "plan", "--detailed-exitcode")
    assert planned.returncode == 2 and "will not guess" in planned.stdout, planned.stdout
    refused = apply(server, repo)
    assert refused.returncode == 1, refused.stdout
    assert writes(server) == []
    assert sum(1 for e in engine(server) if e["cn"] == "dup.example.com") == 2


# -- crash-resume of a replacement ---------------------------------------------------------------

# The boundaries a replacement adds to a create's (the create flow's own, create:* to deployed, are
# killed in test_apply_e2e): between retiring the old binding and creating, and around the delete.
REPLACE_BOUNDARIES = ("replace:retired", "delete:intent", "delete:posted")


def _crash_case(server: SandboxServer, root: Path, index: int, boundary: str) -> list[str]:
    tag, contract = f"rk{index}", f"ctr_1-RKILL{index}"
    repo = root / tag
    names = [f"www.{tag}.example.com", f"{tag}.example.com"]
    www = dv_hook("www", names[0], names)
    write_repo(repo, contract, [www])
    if apply(server, repo).returncode != 0:
        return [f"{boundary}: first apply failed"]
    old = state_of(repo)["entries"]["www"]["enrollment_id"]
    write_repo(repo, contract, [{**www, "sni_only": False}])
    killed = apply(server, repo, "--allow-delete", env={"RECONCILE_TEST_KILL_AT": boundary})
    if killed.returncode != -9:
        return [f"{boundary}: apply was not killed there (exit {killed.returncode}): {killed.stdout[-600:]}"]
    rerun = apply(server, repo, "--allow-delete")
    if rerun.returncode != 0:
        return [f"{boundary}: rerun exit {rerun.returncode}: {rerun.stdout[-1500:]}{rerun.stderr[-600:]}"]
    problems: list[str] = []
    entries = state_of(repo)["entries"]
    new = entries.get("www", {}).get("enrollment_id")
    same_cn = [e for e in engine(server) if e["contract"] == contract.removeprefix("ctr_")]
    alive = [e["id"] for e in same_cn if e["deleteAt"] is None]
    if alive != [new] or new == old:
        problems.append(f"enrollments still serving {alive}, state binds {new} (old {old})")
    if [e for e in entries if e not in ("www", f"www@{old}")]:
        problems.append(f"unexpected state entries {sorted(entries)}")
    if new is not None:
        problems += deletes_after_successor(server, old, new)
    accepted = [r for r in writes(server, old) if r["method"] == "DELETE" and r["status"] in (200, 202)]
    if not 1 <= len(accepted) <= (2 if boundary == "delete:posted" else 1):
        problems.append(f"{len(accepted)} accepted DELETEs of {old}")
    config = load_config(repo / "reconcile.yaml")

    async def replan() -> list[tuple[str, str]]:
        async with CpsClient(server.credentials, base_url=server.base_url, verify=server.ca_bundle) as client:
            state = StateStore(config.state_path).read()
            plan = (await build_plan(load_specs(config), state, client, PlanOptions(allow_delete=True))).plan
            return [(a.name, a.kind) for a in plan.changes + plan.blocked]
    leftover = asyncio.run(replan())
    if leftover:
        problems.append(f"plan after rerun has changes: {leftover}")
    return [f"{boundary}: {p}" for p in problems]


def test_sigkill_at_each_boundary_of_a_replacement_then_rerun_converges(server: SandboxServer,
                                                                          tmp_path: Path) -> None:
    """One new enrollment, the old one deleted (its DELETE accepted once, twice only when the kill
    fell between CPS's answer and state), never before the new one served production; plan empty."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda ib: _crash_case(server, tmp_path, ib[0], ib[1]),
                                enumerate(REPLACE_BOUNDARIES)))
    problems = [p for case in results for p in case]
    assert not problems, "\n".join(problems)
