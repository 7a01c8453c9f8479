"""The built-in sandbox's clock from the CLI (`reconcile sandbox-clock`), and the demo signer dating
certificates by it: a third-party renewal in the `--sandbox` demo, end to end, without a loop."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_apply_e2e import ORG, PERSON

pytestmark = pytest.mark.slow


def reconcile(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", "--no-color", "--sandbox", *args], cwd=repo,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1", "RECONCILE_SANDBOX_SPEED": "20000"})


def test_sandbox_clock_moves_the_demo_into_a_renewal_window_and_the_renewal_does_not_loop(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    (repo / "reconcile.yaml").write_text(yaml.safe_dump({
        "default_contract": "ctr_1-CLOCK",
        "defaults": {"admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG}}))
    (repo / "specs" / "shop.yaml").write_text(yaml.safe_dump({
        "name": "shop", "type": "third-party", "common_name": "shop.clock.example.com", "dual_stack": False,
        "signer": {"command": f"{sys.executable} -m reconciler --sandbox sandbox-sign"},
        "renewal": {"before_expiry": "30d"}}))
    first = reconcile(repo, "apply", "--auto-approve")
    assert first.returncode == 0, first.stdout + first.stderr
    before = reconcile(repo, "sandbox-clock")
    moved = reconcile(repo, "sandbox-clock", "--advance", "65d")
    assert moved.returncode == 0 and before.stdout != moved.stdout, moved.stdout + moved.stderr
    assert moved.stdout.startswith("sandbox time: ")
    planned = reconcile(repo, "plan", "--detailed-exitcode")
    assert planned.returncode == 2 and "shop: renew (renewal-window)" in planned.stdout, planned.stdout
    renewed = reconcile(repo, "apply", "--auto-approve")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    after = reconcile(repo, "plan", "--detailed-exitcode")  # signed at the sandbox's time: 90 days from now
    assert after.returncode == 0, after.stdout
    bad = reconcile(repo, "sandbox-clock", "--advance", "soon")
    assert bad.returncode == 1 and "is not a duration" in bad.stderr
