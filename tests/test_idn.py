"""Punycode host names are shown with their Unicode form, in plan and status, for people only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.idn import unicode_name, with_unicode
from tests.observe.rig import make_repo, run, write_spec
from tests.sandbox.helpers import DEMO_PUBLISH


def test_unicode_name() -> None:
    assert unicode_name("xn--bcher-kva.example") == "bücher.example"
    assert unicode_name("*.xn--bcher-kva.example") == "*.bücher.example"
    assert unicode_name("www.example.com") is None
    assert unicode_name("xn--zz.example") is None  # not valid punycode: shown as it is


def test_with_unicode_annotates_every_name_and_nothing_else() -> None:
    assert with_unicode('["example.com", "*.xn--bcher-kva.example"]') == (
        '["example.com", "*.xn--bcher-kva.example (*.bücher.example)"]')
    assert with_unicode("new dv enrollment for xn--bcher-kva.example.") == (
        "new dv enrollment for xn--bcher-kva.example (bücher.example).")
    assert with_unicode("no names here; example.com only") == "no names here; example.com only"


def test_plan_and_status_show_the_unicode_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, monkeypatch)
    write_spec(repo, "books", common_name="bücher.example", sans=["www.bücher.example"],
               validation={"publisher": "hook", "hook": {"publish": DEMO_PUBLISH}})
    plan = run(repo, "plan").stdout
    assert "new dv enrollment for xn--bcher-kva.example (bücher.example)" in plan, plan
    markdown = run(repo, "plan", "--format", "markdown").stdout
    assert "xn--bcher-kva.example (bücher.example)" in markdown
    as_json = json.loads(run(repo, "plan", "--format", "json").stdout)
    assert as_json["actions"][0]["common_name"] == "xn--bcher-kva.example"  # tools get the A-label only
    assert run(repo, "apply", "--auto-approve").exit_code == 0
    www = "www.xn--bcher-kva.example"
    write_spec(repo, "books", common_name="bücher.example", sans=["www.bücher.example", "shop.bücher.example"],
               validation={"publisher": "hook", "hook": {"publish": DEMO_PUBLISH}})
    change = run(repo, "plan").stdout
    assert f'"{www} (www.bücher.example)"' in change and "shop.xn--bcher-kva.example (shop.bücher.example)" in change
    status = run(repo, "status").stdout
    assert any(line.startswith("books ") and "xn--bcher-kva.example (bücher.example)" in line
               for line in status.splitlines()), status
    status_md = run(repo, "status", "--format", "markdown").stdout
    assert "| xn--bcher-kva.example (bücher.example) |" in status_md
    rows = json.loads(run(repo, "status", "--format", "json").stdout)["enrollments"]
    assert rows[0]["common_name"] == "xn--bcher-kva.example"
