"""Two git branches applying to one enrollment through a state both see: the one behind the last
apply is stopped, not allowed to revert the other's change as "drift" (real git, real CLI, the
sandbox over HTTPS)."""

from __future__ import annotations

from pathlib import Path

import yaml

from reconciler.sandbox.testing import SandboxServer
from tests.e2e.test_apply_e2e import ClockPump, cli, dv_hook, write_repo
from tests.gitrepo import git_out as git
from tests.gitrepo import init_repo


def _specs(repo: Path, sans: list[str]) -> None:
    write_repo(repo, "ctr_1-BRANCH", [dv_hook("www", "www.br.example.com", sans)])
    config = yaml.safe_load((repo / "reconcile.yaml").read_text())
    config["state_path"] = str(repo.parent / "shared-state" / "reconcile-state.json")  # every checkout's
    (repo / "reconcile.yaml").write_text(yaml.safe_dump(config))


def _commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def test_a_branch_behind_the_last_apply_is_blocked_and_goes_on_once_merged(sandbox_server: SandboxServer,
                                                                             tmp_path: Path) -> None:
    server, main = sandbox_server, tmp_path / "main"
    init_repo(main)
    (main / ".gitignore").write_text("published.txt\nstate/\n")
    _specs(main, ["www.br.example.com"])
    _commit(main, "www")
    with ClockPump(server, step=1800.0):
        assert cli(server, main, "apply", "--auto-approve", "--timeout", "25").returncode == 0
        # Branch B forks here; branch A adds a SAN and applies it.
        git(main, "branch", "b")
        _specs(main, ["www.br.example.com", "new.br.example.com"])
        a = _commit(main, "add new.br")
        assert cli(server, main, "apply", "--auto-approve", "--timeout", "25").returncode == 0
        other = tmp_path / "b"
        git(main, "worktree", "add", "-q", str(other), "b")
        (other / "published.txt").touch()
        # B's specs do not know the SAN: its plan must not call A's change drift and remove it.
        server.clear_requests()
        planned = cli(server, other, "plan", "--detailed-exitcode")
        assert planned.returncode == 2, planned.stdout + planned.stderr
        assert "www: update (behind-last-apply)" in planned.stdout
        assert f"last applied from commit {a[:12]}, which this checkout" in planned.stdout
        assert "Changed outside reconciler" not in planned.stdout
        refused = cli(server, other, "apply", "--auto-approve", "--timeout", "25")
        assert refused.returncode == 1, refused.stdout
        assert not [r for r in server.requests() if r["method"] != "GET"]
        # Once B has A's commit, B plans from the newest specs again.
        git(other, "merge", "-q", "main")
        assert cli(server, other, "plan", "--detailed-exitcode").returncode == 0
