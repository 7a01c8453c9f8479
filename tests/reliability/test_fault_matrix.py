"""Fault matrix (issue 8): every CPS operation apply uses x every fault, each cell a full apply.

Each cell injects one fault through the sandbox (real HTTPS, fault rules scoped to the cell by
the ``X-Sandbox-Tag`` header) on the first attempt(s) of one operation, runs plan + apply of a
DV enrollment (hook publisher) and a dual-stack third-party enrollment (signer hook, change
management, pre- and post-verification warnings), and checks:

- the apply ends with every enrollment done (exit 0);
- CPS ends exactly as in the fault-free run (enrollments by CN, SANs, what staging and
  production serve), with exactly one enrollment per spec;
- CPS accepted exactly two creates and one upload (and one PUT for update cells): no write was
  repeated, even when its answer was lost after it landed;
- the state file points each spec at its enrollment, with no intent or change left open;
- the next plan is empty.

The cells run concurrently against one sandbox (its own process) whose clock runs 30000x; the
matrix (operations x faults) is printed at the end of the session (and written as markdown to
``$FAULT_MATRIX_OUT`` when set); docs/reliability.md keeps the last one.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox.engine import EngineConfig
from tests.reliability.fault_rig import (
    OPERATIONS,
    CellResult,
    cells,
    make_customer_ca,
    matrix_table,
    run_matrix,
    signer_command,
)
from tests.reliability.fault_server import SandboxProcess
from tests.secretscan import scan_for_secrets, secrets_of

pytestmark = pytest.mark.slow

CELLS = {cell.id: cell for cell in cells()}
REPORT_ENV = "FAULT_MATRIX_OUT"
"""If set, the matrix is also written (markdown) to this file: how docs/reliability.md gets it."""


class MatrixReport:
    """Prints the matrix in the terminal summary (visible with plain ``pytest -q``)."""

    def __init__(self) -> None:
        self.results: list[CellResult] = []
        self.seconds = 0.0

    def lines(self) -> list[str]:
        passed = sum(r.passed for r in self.results)
        fired = sum(r.fired for r in self.results)
        retries = sum(r.retries for r in self.results)
        lines = [f"{passed}/{len(self.results)} cells passed in {self.seconds:.1f}s wall "
                 f"({fired} faults fired, {retries} client retries); ok = every check held, - = not a pair", ""]
        lines += matrix_table(self.results)
        lines += [f"FAIL {r.cell.id}: {r.problems[0][:300]}" for r in self.results if not r.passed]
        return lines

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results:
            return
        terminalreporter.write_sep("=", "fault matrix (operations x faults)")
        for line in self.lines():
            terminalreporter.write_line(line)
        out = os.environ.get(REPORT_ENV)
        if out:
            Path(out).write_text("\n".join(self.lines()) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def matrix(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the baseline and every cell selected in this session (all of them, normally), once."""
    selected = [CELLS[item.callspec.params["cell_id"]] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec") and "cell_id" in item.callspec.params]
    base = tmp_path_factory.mktemp("fault-matrix")
    signer = signer_command(make_customer_ca(base / "customer-ca"))
    # DV challenges go to a hook writing files: the sandbox trusts the acknowledgement, said explicitly.
    engine = EngineConfig(create_throttle_seconds=0, pre_verification_warnings=True, post_verification_warnings=True,
                          validation_policy="trust-ack")
    report = MatrixReport()
    request.config.pluginmanager.register(report, "fault-matrix-report")
    # Saves of the sandbox's data are coalesced: a snapshot of a few hundred enrollments per write
    # would dominate the run.
    with SandboxProcess(speed=30000, engine=engine, persist_interval=60.0) as server:
        started = time.monotonic()
        baseline, results = asyncio.run(run_matrix(server, base, selected, signer))
        report.seconds = time.monotonic() - started
        report.results = results
        yield {"baseline": baseline, "results": {r.cell.id: r for r in results}, "base": base,
               "credentials": server.credentials}


def test_fault_free_run_deploys_both_and_uses_exactly_the_matrix_routes(matrix: dict[str, Any]) -> None:
    baseline: CellResult = matrix["baseline"]
    assert baseline.passed, baseline.problems
    views = baseline.views
    assert sorted(views) == ["create", "delete", "update"]
    for phase, view in views.items():
        expected = ["shop.T.example.com"] + ([] if phase == "delete" else ["www.T.example.com"])
        assert sorted(view) == expected
        assert all(e["production"] and e["staging"] and e["pendingChanges"] == 0 for e in view.values()), view
    assert [alg for alg, _ in views["create"]["shop.T.example.com"]["production"]] == ["ECDSA", "RSA"]
    assert set(views["update"]["www.T.example.com"]["sans"]) == {"T.example.com", "api.T.example.com",
                                                                 "www.T.example.com"}
    # Which operations a fault-free apply uses, named by route: the matrix must cover every one.
    from reconciler.sandbox.faults import FaultRule

    used = {(r["method"], r["path"]) for r in baseline.log}
    uncovered = sorted(f"{m} {p}" for m, p in used
                       if not any(FaultRule(method=o.method, path=o.route).matches(m, p) for o in OPERATIONS))
    unused = [o.key for o in OPERATIONS
              if not any(FaultRule(method=o.method, path=o.route).matches(m, p) for m, p in used)]
    assert not uncovered, f"apply used routes the matrix does not fault: {uncovered}"
    assert not unused, f"matrix operations a fault-free apply never uses: {unused}"


@pytest.mark.parametrize("cell_id", list(CELLS))
def test_cell(matrix: dict[str, Any], cell_id: str) -> None:
    result: CellResult | None = matrix["results"].get(cell_id)
    assert result is not None, "cell did not run"
    assert result.passed, "\n".join(result.problems)


def test_nothing_the_cells_left_behind_holds_a_credential(matrix: dict[str, Any]) -> None:
    """State files, CSRs, certificates, hook output and every outcome and problem text."""
    results: list[CellResult] = [matrix["baseline"], *matrix["results"].values()]
    texts = {f"{r.cell.id}#{i}": text for r in results for i, text in enumerate(r.notes + r.problems)}
    findings = scan_for_secrets(secrets_of(matrix["credentials"]), paths=[matrix["base"]], texts=texts)
    assert not findings, findings
