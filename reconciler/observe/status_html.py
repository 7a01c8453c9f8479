"""The estate as one self-contained HTML page: a timeline per enrollment, most urgent first, and the
status table below it (``reconcile status --format html --out status.html``).

Contract of the page:

- Self-contained: inline CSS and inline SVG only; nothing is fetched (no fonts, scripts, images or
  links to other origins), so it can be published as a CI artifact and opened offline.
- Every value is escaped (jinja2 autoescape); names, CNs and texts from CPS are data, never markup.
- Deterministic: the page is a function of the rows, ``now`` and the threshold (no clock read, no
  random ids), so the same input gives the same bytes.
- One timeline row (``.lane``) per status row, sorted by urgency:

  ====  =========================================================================
  tier  rows
  ====  =========================================================================
  0     the production certificate expired (an outage), earliest expiry first
  1     the staging certificate expired
  2     a certificate or a renewal date: soonest of expiry and next renewal first
  3     waiting on a person, with nothing deployed yet
  4     the rest (planned only, waiting on CPS or apply)
  ====  =========================================================================

  Ties go by name.

- Each lane draws, on a time axis shared by all lanes: the validity (notBefore to notAfter) of the
  staging and of the production certificate, the third-party renewal window (next renewal to expiry)
  or CPS's renewal start (DV), and today's line; its label names the pending change and what it
  waits for. ``data-*`` attributes carry the same facts for tools and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from reconciler.idn import with_unicode
from reconciler.observe.status import StatusRow, Validity
from reconciler.observe.status_render import HEADERS, expired_lines, renewal_text

WIDTH = 1000.0
"""Timeline width in SVG user units (the SVG scales to the page)."""
MIN_PAST, MIN_FUTURE = timedelta(days=30), timedelta(days=60)
MAX_PAST, MAX_FUTURE = timedelta(days=400), timedelta(days=800)
"""The axis covers every date shown, but at least a month back and two ahead, and at most about a
year back and two ahead (an ancient notBefore must not squash every other bar)."""


@dataclass(frozen=True)
class Axis:
    start: datetime
    end: datetime

    def x(self, moment: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        offset = (moment - self.start).total_seconds()
        return round(min(max(offset / span, 0.0), 1.0) * WIDTH, 1)

    def ticks(self) -> list[tuple[float, str]]:
        """Month starts (every third month beyond eighteen months), labelled ``2026-12``."""
        months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
        step = 1 if months <= 18 else 3
        found: list[tuple[float, str]] = []
        year, month = self.start.year, self.start.month
        while True:
            moment = datetime(year, month, 1, tzinfo=UTC)
            if moment > self.end:
                return found
            if moment >= self.start and (month - 1) % step == 0:
                found.append((self.x(moment), f"{year}-{month:02d}"))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True)
class Bar:
    network: str
    x: float
    width: float
    css: str
    """``ok``, ``soon`` (under the threshold), ``expired``; plus ``open`` when notBefore is unknown."""
    title: str


@dataclass(frozen=True)
class Lane:
    row: StatusRow
    tier: int
    cn: str
    bars: list[Bar]
    window: tuple[float, float] | None
    """Third-party renewal window: x of the next renewal and its width up to the expiry."""
    renew_x: float | None
    renew_title: str
    badges: list[tuple[str, str]]
    """(css class, text), loudest first."""
    renewal: str


def urgency(row: StatusRow, now: datetime) -> tuple[int, datetime, str]:
    """Sort key per the tier table above."""
    far = datetime.max.replace(tzinfo=UTC)
    if row.expired:
        dead = [row.production_expiry] if "production" in row.expired else [row.staging_expiry]
        first = min(d for d in dead if d is not None)
        return (0 if "production" in row.expired else 1, first, row.name)
    dates = [d for d in (row.staging_expiry, row.production_expiry, row.next_renewal) if d is not None]
    if dates:
        return (2, min(dates), row.name)
    return (3 if row.waits_on == "person" else 4, far, row.name)


def _axis(rows: list[StatusRow], now: datetime) -> Axis:
    dates = [now - MIN_PAST, now + MIN_FUTURE]
    for row in rows:
        dates += [d for d in (row.staging_not_before, row.staging_expiry, row.production_not_before,
                              row.production_expiry, row.next_renewal) if d is not None]
    start = max(min(dates), now - MAX_PAST)
    end = min(max(dates), now + MAX_FUTURE)
    # whole months, so that the ticks start and end at the edges
    first = datetime(start.year, start.month, 1, tzinfo=UTC)
    last = datetime(end.year + (end.month == 12), end.month % 12 + 1, 1, tzinfo=UTC)
    return Axis(first, last)


def _bar(network: str, validity: Validity | None, days: int | None, expired: bool, threshold: int,
         axis: Axis) -> Bar | None:
    if validity is None:
        return None
    left = axis.x(validity.not_before) if validity.not_before is not None else 0.0
    right = axis.x(validity.not_after)
    state = "expired" if expired else ("soon" if days is not None and days < threshold else "ok")
    since = validity.not_before.date().isoformat() if validity.not_before else "?"
    title = f"{network}: valid {since} to {validity.not_after.date().isoformat()}"
    if expired:
        title += " (EXPIRED)"
    elif days is not None:
        title += f" ({days} days left)"
    css = state + (" open" if validity.not_before is None else "")
    return Bar(network, left, round(max(right - left, 2.0), 1), css, title)


def _badges(row: StatusRow) -> list[tuple[str, str]]:
    badges = [("expired", f"{network} EXPIRED") for network in ("production", "staging") if network in row.expired]
    if row.not_renewing:
        badges.append(("warn", "not renewing"))
    if row.pending is not None:
        who = {"person": "waits on a person", "apply": "apply can continue", "cps": "CPS is working"}
        badges.append(("person" if row.waits_on == "person" else "pending",
                       f"{row.pending}: {who.get(row.waits_on or 'cps', 'pending')}"))
    if row.drift != "none":
        badges.append(("drift", row.drift))
    return badges


def _lane(row: StatusRow, now: datetime, axis: Axis, threshold: int) -> Lane:
    bars = [bar for bar in (
        _bar("staging", row.validity("staging"), row.staging_days, "staging" in row.expired, threshold, axis),
        _bar("production", row.validity("production"), row.production_days, "production" in row.expired,
             threshold, axis)) if bar is not None]
    window = renew_x = None
    renew_title = ""
    if row.next_renewal is not None:
        renew_x = axis.x(row.next_renewal)
        when = row.next_renewal.date().isoformat()
        if row.renewal == "window":
            expiry = row.production_expiry or row.staging_expiry
            assert expiry is not None
            window = (renew_x, round(max(axis.x(expiry) - renew_x, 1.0), 1))
            renew_title = f"renewal window opens {when} ({row.renewal_window_days:g} days before expiry): apply renews"
        else:
            renew_title = f"CPS starts renewing {when}"
    return Lane(row=row, tier=urgency(row, now)[0], cn=with_unicode(row.common_name or "-"), bars=bars,
                window=window, renew_x=renew_x, renew_title=renew_title, badges=_badges(row),
                renewal=renewal_text(row))


_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_html(rows: list[StatusRow], *, now: datetime, threshold: int) -> str:
    """The page for ``rows`` judged at ``now``; expiry under ``threshold`` days is marked as soon."""
    axis = _axis(rows, now)
    ordered = sorted(rows, key=lambda r: urgency(r, now))
    lanes = [_lane(row, now, axis, threshold) for row in ordered]
    counts = {
        "expired": sum(1 for r in rows if r.expired),
        "not renewing": sum(1 for r in rows if r.not_renewing),
        "waiting on a person": sum(1 for r in rows if r.waits_on == "person"),
        "pending changes": sum(1 for r in rows if r.pending is not None),
    }
    return _ENV.get_template("status.html.j2").render(
        now=now, today_x=axis.x(now), axis=axis, ticks=axis.ticks(), lanes=lanes, headers=HEADERS,
        threshold=threshold, alarms=expired_lines(rows), counts=counts, width=WIDTH)
