"""Packaging a user can trust, the checks that need no build (.ci/wheel-smoke builds and installs):
the changelog starts at the version being packaged, and every data file the package reads at run
time is matched by pyproject's package-data, so the wheel carries it."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_changelog_starts_at_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## (\S+)", text, re.MULTILINE)
    assert versions[:2] == ["Unreleased", PYPROJECT["project"]["version"]], versions


def test_every_package_data_file_is_declared() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["reconciler"]
    tracked = subprocess.run(["git", "ls-files", "reconciler"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    data = [Path(f).relative_to("reconciler").as_posix() for f in tracked if not f.endswith(".py")]
    assert data, "no data files found: is this a git checkout?"
    undeclared = [f for f in data if not any(fnmatch.fnmatch(f, p) or fnmatch.fnmatch(f, p.removeprefix("**/"))
                                             for p in patterns)]
    assert not undeclared, f"add to [tool.setuptools.package-data]: {undeclared}"
