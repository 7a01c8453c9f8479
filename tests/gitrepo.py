"""Real git repositories for tests: running git, and starting a repository with an identity."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``git -C repo ARGS``; a failure raises with git's own words unless ``check`` is false."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stdout}{done.stderr}")
    return done


def git_out(repo: Path, *args: str) -> str:
    """What ``git -C repo ARGS`` printed, stripped."""
    return git(repo, *args).stdout.strip()


def init_repo(root: Path) -> Path:
    """A new repository at ``root`` on branch ``main``, with an identity to commit as."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@example.com")
    git(root, "config", "user.name", "CI")
    return root
