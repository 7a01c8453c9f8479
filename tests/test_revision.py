"""reconciler.revision against a real git repository: HEAD and which recorded commits it contains."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.revision import read_revision
from tests.gitrepo import git_out as git
from tests.gitrepo import init_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo")
    (root / "a.txt").write_text("a")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def test_head_and_ancestry(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-qb", "feature")
    (repo / "b.txt").write_text("b")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "feature")
    feature = git(repo, "rev-parse", "HEAD")
    on_feature = read_revision(repo, [base, feature, "0" * 40, None])
    assert on_feature.commit == feature and on_feature.contains == {base, feature}
    git(repo, "checkout", "-q", "main")
    on_main = read_revision(repo / "." , [base, feature])
    assert on_main.commit == base and on_main.contains == {base}
    assert on_main.lacks(feature) and not on_main.lacks(base) and not on_main.lacks(None)


def test_outside_git_there_is_no_revision(tmp_path: Path) -> None:
    revision = read_revision(tmp_path, ["a" * 40])
    assert revision.commit is None and not revision.lacks("a" * 40)
