"""Which revision of the repository a run works from: the git commit of the checkout, and which
commits it contains.

State records, per enrollment, the commit its spec was last applied from. A plan made from a
checkout that does not contain that commit is *behind*: its specs do not know the last apply
(another branch applied first), so a difference in CPS is not drift to put back but somebody
else's change, and an update from here would revert it. The planner is pure, so the questions
about git are answered here, at the edge, for the commits state mentions, and handed to it as
data (:class:`reconciler.plan.inputs.Revision`).

Outside a git repository (or without git) there is no commit: nothing is recorded beyond the
spec hash and no plan is ever called behind.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

from reconciler.plan.inputs import Revision

_TIMEOUT = 10.0


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def read_revision(root: Path, commits: Iterable[str | None]) -> Revision:
    """HEAD of the repository at ``root`` and which of ``commits`` it contains (is or descends from)."""
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    if head is None or head.returncode != 0 or not head.stdout.strip():
        return Revision()
    commit = head.stdout.strip()
    contained: set[str] = set()
    for other in {c for c in commits if c}:
        if other == commit:
            contained.add(other)
            continue
        answer = _git(root, "merge-base", "--is-ancestor", other, commit)
        if answer is not None and answer.returncode == 0:
            contained.add(other)
    return Revision(commit=commit, contains=frozenset(contained))


__all__ = ["read_revision"]
