"""The html status page of a mixed estate, built and reported through the CLI against the --sandbox
and rendered in headless Chromium (DevTools Protocol over a pipe): one timeline lane per enrollment,
most urgent first, the expired one marked, nothing fetched. The screenshot stays under pytest's tmp
dir. Status judges by CPS's clock: "lapsed" is expired on the sandbox's virtual clock only (this
machine's clock says it has months left).

The estate, on the sandbox's virtual clock (moved with POST /_sandbox/advance):
  lapsed    third-party, no renewal window, deployed then left 100 days: EXPIRED, not renewing
  yearly    third-party, signed for 400 days, renewal window 30d: deployed, a window ahead
  renewing  DV deployed, then 75 days later CPS opened its own renewal change (apply can continue)
  www       DV deployed last: calm
  manual    DV with a manual publisher: waits on a person for its challenges
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from reconciler.sandbox.local import open_local_sandbox
from tests.sandbox.helpers import DEMO_PUBLISH

from .chromium import Chromium, find_chromium
from .rig import make_repo, run, write_spec

DAY = 86400.0
HOOK = {"publisher": "hook", "hook": {"publish": DEMO_PUBLISH}}  # where the in-process sandbox looks


def _signer(days: int) -> dict[str, Any]:
    return {"command": f"{sys.executable} -m reconciler sandbox-sign --days {days}"}


def advance(repo: Path, seconds: float) -> str:
    """POST /_sandbox/advance to the repository's in-process sandbox; returns the new virtual now."""
    sandbox = open_local_sandbox(repo / ".reconcile" / "sandbox")
    try:
        async def post() -> str:
            async with httpx.AsyncClient(transport=sandbox.transport, base_url=sandbox.base_url) as http:
                answer = await http.post("/_sandbox/advance", json={"seconds": seconds})
                answer.raise_for_status()
                return str(answer.json()["now"])
        return anyio.run(post)
    finally:
        sandbox.close()


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    monkeypatch = pytest.MonkeyPatch()
    try:
        repo = make_repo(tmp_path_factory.mktemp("estate-html"), monkeypatch)
        write_spec(repo, "lapsed", type="third-party", signer=_signer(90))
        write_spec(repo, "yearly", type="third-party", signer=_signer(400), renewal={"before_expiry": "30d"})
        first = run(repo, "apply", "--auto-approve")
        assert first.exit_code == 0, first.output
        advance(repo, 100 * DAY)
        write_spec(repo, "renewing", validation=HOOK)
        second = run(repo, "apply", "--auto-approve", "--target", "renewing")
        assert second.exit_code == 0, second.output
        advance(repo, 75 * DAY)  # CPS opens the DV renewal 20 days before expiry
        write_spec(repo, "www", validation=HOOK)
        write_spec(repo, "manual", validation={"method": "dns-01", "publisher": "manual"})
        third = run(repo, "apply", "--auto-approve", "--target", "www", "--target", "manual")
        assert third.exit_code == 3, third.output  # manual waits on a person
        yield repo
    finally:
        monkeypatch.undo()


LAYOUT = """JSON.stringify([...document.querySelectorAll('#timeline .lane')].map(lane => {
  const svg = lane.querySelector('svg').getBoundingClientRect();
  const today = lane.querySelector('line.today').getBoundingClientRect();
  const bars = [...lane.querySelectorAll('rect.bar')].map(b => {
    const r = b.getBoundingClientRect();
    return {cls: b.getAttribute('class'), left: r.left, right: r.right, width: r.width, height: r.height};
  });
  return {name: lane.dataset.name, expired: lane.dataset.expired, pending: lane.dataset.pending || null,
          waits: lane.dataset.waitsOn, renewal: lane.dataset.renewal, text: lane.innerText,
          badges: [...lane.querySelectorAll('.badge')].map(b => b.textContent),
          visible: svg.width > 300 && svg.height > 20, today: today.left + today.width / 2, bars};
}))"""


def test_the_page_renders_one_lane_per_enrollment_most_urgent_first(estate: Path, tmp_path: Path) -> None:
    page = tmp_path / "status.html"
    result = run(estate, "status", "--format", "html", "--out", str(page))
    assert result.exit_code == 0, result.output
    assert "EXPIRED: lapsed" in result.stderr  # written to a file, the alarm still reaches the terminal
    with Chromium(find_chromium()) as browser:
        browser.open(page)
        lanes = json.loads(browser.evaluate(LAYOUT))
        table = browser.evaluate("[...document.querySelectorAll('#estate tbody tr')].map(r => r.dataset.name)")
        alarm = browser.evaluate("document.querySelector('[role=alert]')?.innerText || ''")
        requested = browser.requested_urls()
        shot = browser.screenshot(tmp_path / "status.png")
    print(f"\nstatus page: {page}\nscreenshot: {shot}")

    by_name = {lane["name"]: lane for lane in lanes}
    assert [lane["name"] for lane in lanes] == ["lapsed", "renewing", "www", "yearly", "manual"], lanes
    assert table == [lane["name"] for lane in lanes]
    assert requested == [page.as_uri()], f"the page fetched something: {requested}"
    assert all(lane["visible"] for lane in lanes)

    lapsed = by_name["lapsed"]
    assert lapsed["expired"] == "staging production" and "production EXPIRED" in lapsed["badges"]
    assert "not renewing" in lapsed["badges"] and "NOT RENEWING" in lapsed["text"]
    assert "lapsed" in alarm and "outage" in alarm
    production = next(b for b in lapsed["bars"] if "production" in b["cls"])
    assert "expired" in production["cls"] and production["right"] < lapsed["today"]  # drawn before today
    assert all(lane["expired"] == "" for lane in lanes if lane["name"] != "lapsed")

    renewing = by_name["renewing"]
    assert renewing["pending"].startswith("renewal #") and renewing["waits"] == "apply"
    assert "lets-encrypt-challenges" in renewing["text"]

    www = by_name["www"]
    assert www["renewal"] == "cps" and "(cps)" in www["text"]
    for bar in www["bars"]:  # valid now: the bar spans today's line
        assert bar["left"] < www["today"] < bar["right"] and "ok" in bar["cls"]

    yearly = by_name["yearly"]
    assert yearly["renewal"] == "window" and "(window 30d)" in yearly["text"]

    manual = by_name["manual"]
    assert manual["waits"] == "person" and manual["bars"] == [] and manual["pending"].startswith("new-certificate")
    assert "reconcile challenges manual" in manual["text"]

    assert shot.stat().st_size > 10_000


def test_expiry_is_judged_by_cps_clock_not_this_machines(estate: Path) -> None:
    data = json.loads(run(estate, "status", "--format", "json").stdout)
    lapsed = next(r for r in data["enrollments"] if r["name"] == "lapsed")
    expiry = datetime.fromisoformat(lapsed["production_expiry"])
    assert expiry > datetime.now(UTC), "this machine's clock says it is still valid"
    assert datetime.fromisoformat(data["now"]) > expiry and lapsed["expired"] == ["staging", "production"]
    assert lapsed["production_days"] < 0 and data["expired"] == ["lapsed"]
    text = run(estate, "status")
    assert text.exit_code == 0 and "EXPIRED: lapsed (lapsed.example.com) production certificate" in text.stdout
    markdown = run(estate, "status", "--format", "markdown", "--expiring-within", "1")
    assert markdown.exit_code == 1 and markdown.stdout.startswith("> :rotating_light: **EXPIRED: lapsed")
    assert "lapsed" in markdown.stderr


def test_cli_writes_the_page_atomically_with_every_enrollment(estate: Path) -> None:
    out = estate / "reports" / "status.html"
    result = run(estate, "status", "--format", "html", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"to {out}" in result.stderr
    page = out.read_text(encoding="utf-8")
    for name in ("lapsed", "renewing", "www", "yearly", "manual"):
        assert f'data-name="{name}"' in page
    assert not list(out.parent.glob(".*"))  # no temporary file left behind


def test_one_read_of_cps_gives_json_on_stdout_and_the_page_beside_it(estate: Path) -> None:
    page = estate / "status-too.html"
    result = run(estate, "status", "--format", "json", "--html", str(page))
    assert result.exit_code == 0, result.output
    names = [r["name"] for r in json.loads(result.stdout)["enrollments"]]
    assert sorted(names) == ["lapsed", "manual", "renewing", "www", "yearly"]
    assert page.read_text(encoding="utf-8").count('<div class="lane ') == 5


def test_no_browser_fails_under_ci_and_skips_loudly_elsewhere(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("RECONCILE_CHROMIUM", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="NO BROWSER"):
        find_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="NO BROWSER"):
        find_chromium()
