"""The status renderings from hand-made rows (no CPS): renewal and expiry fields in text, markdown and
json; the html page's order, geometry, escaping, determinism and self-containment."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from reconciler.observe.status import StatusRow, expiring
from reconciler.observe.status_html import render_html, urgency
from reconciler.observe.status_render import render_status

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def row(name: str, **fields: object) -> StatusRow:
    base = StatusRow(name=name, enrollment_id=None, type="dv", common_name=f"{name}.example.com", san_count=1,
                     pending=None, waiting_for=None, staging_expiry=None, production_expiry=None,
                     staging_days=None, production_days=None, drift="none")
    return replace(base, **fields)  # type: ignore[arg-type]


def deployed(name: str, issued: int, lifetime: int, **fields: object) -> StatusRow:
    """Both networks serve a certificate issued ``issued`` days ago (negative: in the future)."""
    start = NOW - timedelta(days=issued)
    end = start + timedelta(days=lifetime)
    days = int((end - NOW).total_seconds() // 86400)
    expired = ("staging", "production") if end <= NOW else ()
    return row(name, enrollment_id=1000 + len(name), staging_not_before=start, staging_expiry=end,
               production_not_before=start, production_expiry=end, staging_days=days, production_days=days,
               expired=expired, **fields)


ESTATE = [
    deployed("calm", 10, 90, renewal="cps", next_renewal=NOW + timedelta(days=60), renewal_days=60),
    deployed("dead", 100, 90, type="third-party", renewal="none"),
    deployed("yearly", 30, 365, type="third-party", renewal="window", renewal_window_days=30.0,
             next_renewal=NOW + timedelta(days=305), renewal_days=305),
    deployed("renewing", 75, 90, pending="renewal #7", waiting_for="lets-encrypt-challenges", waits_on="apply",
             renewal="cps", next_step="change 7 waits for lets-encrypt-challenges"),
    row("manual", enrollment_id=12, pending="new-certificate #3", waiting_for="lets-encrypt-challenges",
        waits_on="person", renewal="cps",
        next_step="change 3: publish the DV challenges shown by `reconcile challenges manual`"),
    row("planned", drift="plan: create", renewal="cps"),
]


class Dom(HTMLParser):
    """Elements by class and the text under each ``.lane`` (enough for these assertions)."""

    def __init__(self) -> None:
        super().__init__()
        self.lanes: list[dict[str, str]] = []
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if "lane" in values.get("class", "").split():
            self.lanes.append(values)


def parse(page: str) -> Dom:
    dom = Dom()
    dom.feed(page)
    return dom


def test_text_shows_next_renewal_and_shouts_expired() -> None:
    text = render_status(ESTATE, "text", 30, now=NOW)
    lines = text.splitlines()
    assert "NEXT RENEWAL" in lines[0]
    by_name = {line.split()[0]: line for line in lines[1:len(ESTATE) + 1]}
    assert "2027-02-02 (cps)" in by_name["calm"]
    assert "2027-10-05 (window 30d)" in by_name["yearly"]
    assert "none: NOT RENEWING" in by_name["dead"] and "-10d EXPIRED!" in by_name["dead"]
    assert "renewing" in by_name["renewing"]
    assert lines[-2] == ("EXPIRED: dead (dead.example.com) production certificate expired 2026-11-24 12:00 UTC: "
                         "an expired production certificate is an outage")
    assert lines[-1] == "EXPIRED: dead (dead.example.com) staging certificate expired 2026-11-24 12:00 UTC"
    assert by_name["manual"].split()[-2:] == ["cps", "none"]  # no date before anything is deployed


def test_a_due_window_says_due() -> None:
    due = replace(ESTATE[2], next_renewal=NOW - timedelta(days=1), renewal_days=-1)
    assert "due (window 30d)" in render_status([due], "text", 30)


def test_markdown_puts_the_expired_banner_first() -> None:
    lines = render_status(ESTATE, "markdown", 30, now=NOW).splitlines()
    assert lines[0].startswith("> :rotating_light: **EXPIRED: dead") and "outage" in lines[0]
    assert any(line.startswith("| dead |") and "**-10d EXPIRED** :warning:" in line for line in lines)


def test_json_carries_every_field_and_the_clock() -> None:
    data = json.loads(render_status(ESTATE, "json", 30, now=NOW))
    assert data["now"] == NOW.isoformat() and data["expired"] == ["dead"]
    rows = {r["name"]: r for r in data["enrollments"]}
    assert rows["dead"]["expired"] == ["staging", "production"] and rows["dead"]["not_renewing"] is True
    assert rows["yearly"]["renewal"] == "window" and rows["yearly"]["renewal_window_days"] == 30.0
    assert rows["yearly"]["next_renewal"] == (NOW + timedelta(days=305)).isoformat()
    assert rows["calm"]["production_not_before"] == (NOW - timedelta(days=10)).isoformat()
    assert rows["manual"]["waits_on"] == "person" and "publish" in rows["manual"]["next_step"]


def test_expiring_counts_an_expired_certificate() -> None:
    assert [r.name for r in expiring(ESTATE, 1)] == ["dead"]


def test_page_orders_lanes_by_urgency() -> None:
    dom = parse(render_html(ESTATE, now=NOW, threshold=30))
    assert [lane["data-name"] for lane in dom.lanes] == ["dead", "renewing", "calm", "yearly", "manual", "planned"]
    assert [lane["data-urgency"] for lane in dom.lanes] == ["1", "2", "3", "4", "5", "6"]
    dead = dom.lanes[0]
    assert dead["data-expired"] == "staging production" and "tier-0" in dead["class"]
    assert all(lane["data-expired"] == "" for lane in dom.lanes[1:])
    assert dom.lanes[1]["data-pending"] == "renewal #7" and dom.lanes[4]["data-waits-on"] == "person"
    # staging-only expiry ranks after production, before everything dated
    stale = replace(ESTATE[0], name="stale", expired=("staging",))
    assert sorted([urgency(stale, NOW), urgency(ESTATE[1], NOW), urgency(ESTATE[3], NOW)])[1][0] == 1


def test_page_geometry_puts_today_and_the_window_where_they_belong() -> None:
    page = render_html(ESTATE, now=NOW, threshold=30)
    today = re.search(r'<line class="today" x1="([\d.]+)"', page)
    assert today is not None
    x_today = float(today.group(1))
    dead_bar = re.search(r'<rect class="bar production expired" x="([\d.]+)" y="26" width="([\d.]+)"', page)
    assert dead_bar is not None and float(dead_bar.group(1)) + float(dead_bar.group(2)) < x_today
    window = re.search(r'<rect class="window" x="([\d.]+)" y="2" width="([\d.]+)"', page)
    assert window is not None and float(window.group(1)) > x_today
    assert "renewal window opens 2027-10-05 (30 days before expiry)" in page
    assert page.count('<line class="renew cps"') == 1  # calm; renewing shows its open change instead


def test_page_escapes_every_value() -> None:
    evil = row("evil", common_name="<script>alert(1)</script>.example.com", drift='changed: "x" & <b>',
               pending="renewal #1", waiting_for="<img src=x onerror=alert(1)>", waits_on="person",
               next_step="</div><script>bad()</script>")
    page = render_html([evil], now=NOW, threshold=30)
    assert "<script>" not in page and "<img" not in page and "</div><script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "changed: &#34;x&#34; &amp; &lt;b&gt;" in page


def test_page_is_self_contained() -> None:
    page = render_html(ESTATE, now=NOW, threshold=30)
    dom = parse(page)
    assert not [t for t, attrs in dom.tags if t in ("script", "link", "img", "iframe", "object", "embed")]
    assert not [attrs for _, attrs in dom.tags if "src" in attrs or "href" in attrs]
    assert "url(" not in page and "@import" not in page and "http://" not in page and "https://" not in page


def test_page_is_deterministic_for_the_same_input() -> None:
    first = render_html(ESTATE, now=NOW, threshold=30)
    assert render_html(list(reversed(ESTATE)), now=NOW, threshold=30) == first
    later = render_html(ESTATE, now=NOW + timedelta(days=1), threshold=30)
    assert later != first


def test_empty_estate_page() -> None:
    page = render_html([], now=NOW, threshold=30)
    assert "No enrollments in specs or state." in page and not parse(page).lanes
