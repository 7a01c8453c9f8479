"""The CI example and the pre-commit hook only use commands and options the CLI really has."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def _invocations(text: str) -> list[list[str]]:
    found = []
    for match in re.finditer(r"reconcile ([a-z-]+(?: [^|>;&\n]*)?)", text):
        words = shlex.split(match.group(1))
        if words and words[0] in cli.commands:  # type: ignore[attr-defined]
            found.append(words)
    return found


def _check(words: list[str]) -> None:
    command = cli.commands[words[0]]  # type: ignore[attr-defined]
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in words[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"reconcile {words[0]} has no option {word}"


def test_workflow_runs_validate_plan_markdown_on_prs_and_applies_a_saved_plan_on_main() -> None:
    text = (ROOT / "examples" / "ci" / "reconcile.yml").read_text()
    workflow = yaml.load(text, Loader=yaml.BaseLoader)  # keeps the `on:` key a string
    assert set(workflow["on"]) >= {"pull_request", "push"}
    plan_steps = " ".join(s.get("run", "") for s in workflow["jobs"]["plan"]["steps"])
    assert "reconcile validate" in plan_steps and "plan --format markdown" in plan_steps
    apply_steps = " ".join(s.get("run", "") for s in workflow["jobs"]["apply"]["steps"])
    assert "plan --out plan.json" in apply_steps and "reconcile apply plan.json" in apply_steps
    calls = _invocations(text)
    assert {c[0] for c in calls} >= {"validate", "plan", "apply", "status"}
    for words in calls:
        _check(words)


def test_pre_commit_hook_runs_validate() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "reconcile-validate")
    assert hook["entry"] == "reconcile validate" and hook["pass_filenames"] is False
    assert re.match(hook["files"], "specs/www.yaml") and re.match(hook["files"], "reconcile.yaml")
    assert not re.match(hook["files"], "README.md")


# -- the workflow's shell steps, run as GitHub Actions runs them ------------------------------------

WORKFLOW = ROOT / "examples" / "ci" / "reconcile.yml"
# GitHub's runner (docs "jobs.<job_id>.steps[*].shell"): a step without a shell runs under
# `bash -e`; `shell: bash` means `bash --noprofile --norc -eo pipefail`.
SHELLS = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"]}
FAKE_RECONCILE = """#!/bin/sh
echo "reconcile $* (exit $FAKE_RECONCILE_EXIT)"
exit "$FAKE_RECONCILE_EXIT"
"""


def _workflow() -> dict[str, Any]:
    return yaml.load(WORKFLOW.read_text(), Loader=yaml.BaseLoader)  # type: ignore[no-any-return]


def _reconcile_steps() -> list[tuple[str, dict[str, Any], str | None]]:
    """(job, step, shell) for every step that runs reconcile, with the shell GitHub would use."""
    workflow = _workflow()
    top = workflow.get("defaults", {}).get("run", {}).get("shell")
    found = []
    for job_name, job in workflow["jobs"].items():
        job_shell = job.get("defaults", {}).get("run", {}).get("shell", top)
        for step in job["steps"]:
            if re.search(r"(^|[\s;&|(])reconcile [a-z]", step.get("run", "")):
                found.append((job_name, step, step.get("shell", job_shell)))
    return found


def _expand(text: str, runner_temp: Path) -> str:
    def value(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        return str(runner_temp) if expr == "runner.temp" else "placeholder"
    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def _run_step(step: dict[str, Any], shell: str | None, tmp: Path, bin_dir: Path,
              exit_code: int | None) -> tuple[int, str, dict[str, Path]]:
    """Run one step's script the way the runner does; ``exit_code`` is what `reconcile` returns
    (None: the real reconcile of this virtualenv)."""
    assert shell in SHELLS, f"unexpected shell {shell!r}"
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    files = {name: tmp / name.lower() for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV")}
    for path in files.values():
        path.write_text("")
    script = tmp / "step.sh"
    script.write_text(_expand(step["run"], tmp))
    env = {**{k: _expand(v, tmp) for k, v in step.get("env", {}).items()},
           **{k: str(p) for k, p in files.items()}, "RUNNER_TEMP": str(tmp), "HOME": str(tmp),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    if exit_code is not None:
        env["FAKE_RECONCILE_EXIT"] = str(exit_code)
    done = subprocess.run([*SHELLS[shell], str(script)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=60)
    return done.returncode, done.stdout + done.stderr, files


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "reconcile"
    fake.write_text(FAKE_RECONCILE)
    fake.chmod(0o755)
    return bin_dir


def _step_ids() -> list[str]:
    return [f"{job}: {step.get('name', step['run'][:40])}" for job, step, _ in _reconcile_steps()]


@pytest.mark.parametrize("index", range(len(_reconcile_steps())), ids=_step_ids())
def test_no_workflow_step_masks_a_reconcile_error(index: int, tmp_path: Path, fake_bin: Path) -> None:
    _, step, shell = _reconcile_steps()[index]
    failed, output, _ = _run_step(step, shell, tmp_path, fake_bin, exit_code=1)
    assert failed != 0, f"the step passed although reconcile exited 1:\n{step['run']}\n{output}"
    passed, output, _ = _run_step(step, shell, tmp_path, fake_bin, exit_code=0)
    assert passed == 0, output


def _step(job: str, needle: str) -> tuple[dict[str, Any], str | None]:
    return next((s, sh) for j, s, sh in _reconcile_steps() if j == job and needle in s["run"])


def test_each_step_reads_the_exit_codes_as_documented(tmp_path: Path, fake_bin: Path) -> None:
    # PR plan: 2 (changes present) is a good plan, recorded for later steps
    step, shell = _step("plan", "plan --format markdown")
    code, output, files = _run_step(step, shell, tmp_path, fake_bin, exit_code=2)
    assert code == 0 and "exitcode=2" in files["GITHUB_OUTPUT"].read_text(), output
    # apply: 3 (waits on a person) is a warning, not a failure
    step, shell = _step("apply", "reconcile apply plan.json")
    code, output, _ = _run_step(step, shell, tmp_path, fake_bin, exit_code=3)
    assert code == 0 and "::warning::" in output, output
    # daily drift alarm: 2 (CPS differs from the specs) fails the run, and the plan still reaches the summary
    step, shell = _step("expiry", "plan --detailed-exitcode")
    code, output, files = _run_step(step, shell, tmp_path, fake_bin, exit_code=2)
    assert code != 0 and "reconcile plan" in files["GITHUB_STEP_SUMMARY"].read_text(), output


def test_the_daily_job_publishes_the_page_its_status_step_writes_even_when_the_check_fails() -> None:
    steps = _workflow()["jobs"]["expiry"]["steps"]
    index = next(i for i, s in enumerate(steps) if "reconcile status" in s.get("run", ""))
    words = next(w for w in _invocations(steps[index]["run"]) if w[0] == "status")
    page = words[words.index("--html") + 1]
    upload = next(s for s in steps[index + 1:] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == page
    assert "!cancelled()" in upload.get("if", ""), "the page must be published when the expiry check fails"


def test_the_expiry_check_fails_with_the_real_reconcile_when_it_cannot_read_cps(tmp_path: Path) -> None:
    step, shell = _step("expiry", "status")
    real_bin = Path(sys.executable).parent  # this virtualenv's `reconcile`; the .edgerc does not exist
    (tmp_path / "work" / "specs").mkdir(parents=True)
    code, output, files = _run_step(step, shell, tmp_path, real_bin, exit_code=None)
    assert code == 1, output
    assert "Error:" in output and "edgerc" in output.lower()
