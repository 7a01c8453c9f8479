"""Several creates on one contract meet CPS's create throttle; the progress line says what that is
and when apply tries again, instead of a bare "throttled (retrying)"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.observe.rig import make_repo, run, write_spec

# Publishes where the in-process sandbox looks, as the demo's hook does.
HOOK = {"publisher": "hook", "hook": {"publish": "mkdir -p .reconcile && printf '%s TXT %s\\n' "
                                                 "\"$RECONCILE_RECORD_NAME\" \"$RECONCILE_RECORD_VALUE\" >> .reconcile/dns-published.txt"}}


def test_a_throttled_create_says_why_and_when_the_next_try_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, monkeypatch)
    monkeypatch.setenv("RECONCILE_SANDBOX_SPEED", "1000")  # the 5-minute window lasts 0.3 s: both creates meet it
    write_spec(repo, "one", validation=HOOK)
    write_spec(repo, "two", validation=HOOK)
    result = run(repo, "apply", "--auto-approve", "--no-wait")
    assert result.exit_code == 0, result.output
    throttled = [line for line in result.stderr.splitlines() if "create throttled by CPS" in line]
    assert throttled, result.stderr  # the second create on the contract waits for the first one's window
    assert all("retrying" not in line for line in throttled)
    assert re.search(r"CPS creates one enrollment per contract every 5 minutes; normal when several are "
                     r"created; next try in [0-9.]+ s, at \d\d:\d\d:\d\d", throttled[0]), throttled[0]
