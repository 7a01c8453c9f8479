"""The estate at a glance: one row per enrollment known to the specs and/or the state file.

Status plans exactly like ``plan`` does (same refresh, same diff), so its pending-change and drift
columns never disagree with the plan, then reads each bound enrollment's deployments (one request
for both networks) for the validity of the certificates each network serves.

Every date is judged against one ``now``: CPS's clock (the ``Date`` of its answers, read after the
last one; ``reconciler.cps.clock``), not the runner's, so a skewed CI clock neither hides an
expiry nor invents one, and the sandbox's virtual clock counts as CPS's time.

============================  ===============================================================
fact                          rule
============================  ===============================================================
expired                       a network serves a certificate whose notAfter is at or before now
                              (production: an outage; staging: what CPS would push is dead)
next renewal, DV              CPS's ``autoRenewalStartTime`` (CPS renews by itself; absent while
                              a renewal change is open or nothing is on production)
next renewal, third-party     expiry of what is deployed (production, else staging) minus the
                              spec's ``renewal.before_expiry``
not renewing                  third-party without ``renewal.before_expiry``: CPS never renews
                              these and apply only does when the window or the token says so
waits on                      the plan's answer for the change in flight: cps, apply or person
============================  ===============================================================
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from reconciler.cps.client import CpsClient
from reconciler.cps.models import Deployment
from reconciler.plan.inputs import Desired, Revision
from reconciler.plan.pipeline import build_plan
from reconciler.plan.planner import PlanOptions
from reconciler.spec.loader import LoadedSpecs
from reconciler.state.model import State
from reconciler.x509names import validity_of

DEFAULT_THRESHOLD_DAYS = 30


Renewal = Literal["cps", "window", "none"]
"""How the certificate gets renewed: ``cps`` by itself (DV), ``window`` by apply inside the spec's
``renewal.before_expiry`` (third-party), ``none``: nothing renews it (third-party without a window)."""
WaitsOn = Literal["cps", "apply", "person"]
NETWORKS = ("staging", "production")


@dataclass(frozen=True)
class Validity:
    """The notBefore/notAfter of what one network serves (the leaf that expires first); ``not_before``
    is None when CPS only gave an expiry date (no PEM)."""

    not_before: datetime | None
    not_after: datetime


@dataclass(frozen=True)
class StatusRow:
    """One enrollment's status; ``None`` where unknown (not deployed, not bound, not refreshed)."""

    name: str
    enrollment_id: int | None
    type: str | None
    common_name: str | None
    san_count: int | None
    pending: str | None
    """``<change type> #<id>``, or None without a change in flight."""
    waiting_for: str | None
    """``allowedInput`` offered (a person or apply can act), ``cps`` when only CPS can."""
    staging_expiry: datetime | None
    production_expiry: datetime | None
    staging_days: int | None
    production_days: int | None
    drift: str
    """``none``, ``changed: <fields>``, ``gone``, or the planned change kinds (``plan: update``); then
    ``blocked: <kinds>`` for what the plan blocks (``blocked: delete`` for a removed spec)."""
    staging_not_before: datetime | None = None
    production_not_before: datetime | None = None
    renewal: Renewal | None = None
    """None when the type is unknown (a state entry never refreshed)."""
    renewal_window_days: float | None = None
    next_renewal: datetime | None = None
    renewal_days: int | None = None
    """Days until the next renewal (0 or less: due now)."""
    expired: tuple[str, ...] = ()
    """Networks (``staging``, ``production``) serving a certificate past its notAfter."""
    waits_on: WaitsOn | None = None
    """Who moves the change in flight on: ``cps``, ``apply`` (run it) or ``person``."""
    next_step: str | None = None
    """The plan's line for the change in flight (what it waits for, what a person must do)."""

    @property
    def not_renewing(self) -> bool:
        return self.renewal == "none"

    def validity(self, network: str) -> Validity | None:
        expiry = self.production_expiry if network == "production" else self.staging_expiry
        start = self.production_not_before if network == "production" else self.staging_not_before
        return None if expiry is None else Validity(start, expiry)

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        data["expired"] = list(self.expired)
        data["not_renewing"] = self.not_renewing
        return data


def _validity(deployment: Deployment | None) -> Validity | None:
    """When the certificates a network serves are valid together (None: nothing deployed); from an
    expiry date alone where CPS sent no PEM."""
    if deployment is None:
        return None
    pems = [c.certificate for c in deployment.certificates if c.certificate]
    if pems:
        return Validity(*validity_of(pems))
    ends = [datetime.fromisoformat(c.expiry.replace("Z", "+00:00")) for c in deployment.certificates if c.expiry]
    return Validity(None, min(ends)) if ends else None


async def _deployments(client: CpsClient, eid: int) -> tuple[Validity | None, Validity | None]:
    both = await client.get_deployments(eid)  # one request for staging and production
    return _validity(both.staging), _validity(both.production)


def _days(expiry: datetime | None, now: datetime) -> int | None:
    return None if expiry is None else int((expiry - now).total_seconds() // 86400)


def _renewal(kind: str | None, want: Desired | None, auto_start: datetime | None, staging: Validity | None,
             production: Validity | None) -> tuple[Renewal | None, float | None, datetime | None]:
    """(how it renews, the window in days, the next renewal date) per the table above."""
    if kind == "third-party":
        window = want.policy.renewal_days if want is not None else None
        if window is None:
            return "none", None, None
        basis = production or staging
        return "window", window, (basis.not_after - timedelta(days=window)) if basis is not None else None
    if kind is None:
        return None, None, None
    return "cps", None, auto_start


@dataclass(frozen=True)
class StatusReport:
    """The rows, by name, and the time (CPS's) every date in them was judged by."""

    rows: list[StatusRow]
    now: datetime


async def collect_status(specs: LoadedSpecs, state: State, client: CpsClient, *,
                         revision: Revision | None = None) -> StatusReport:
    """Rows sorted by name for every spec and every state entry, read live through ``client``
    (``revision``: the checkout, so that status calls drift what plan calls drift)."""
    started = client.cps_now()
    result = await build_plan(specs, state, client, PlanOptions(now=started.isoformat(timespec="seconds"),
                                                                revision=revision or Revision()))
    plan, observed = result.plan, result.observed
    desired = {d.name: d for d in result.desired}
    drift = {d.name: d for d in plan.drift}
    names = sorted(set(desired) | set(state.entries))
    bound = observed.bound if observed is not None else {}
    validities = await asyncio.gather(*(_deployments(client, bound[n].enrollment_id) for n in names if n in bound))
    by_name = dict(zip([n for n in names if n in bound], validities, strict=True))
    now = client.cps_now()  # after the last answer: CPS's time, as exact as its Date header
    rows: list[StatusRow] = []
    for name in names:
        live = bound.get(name)
        want = desired.get(name)
        entry = state.entry(name)
        view = live.view if live is not None else (want.view if want is not None else {})
        change = live.active_change if live is not None else None
        staging, production = by_name.get(name, (None, None))
        actions = plan.actions_for(name)
        kinds = sorted({a.kind for a in actions if a.is_change})
        blocked = sorted({a.kind for a in plan.blocked if a.name == name})
        waiting = next((a for a in [*actions, *(b for b in plan.blocked if b.name == name)]
                        if a.pending is not None), None)
        if name in drift:
            d = drift[name]
            text = "gone" if d.kind == "gone" else "changed: " + ", ".join(c.path for c in d.changes)
        elif kinds:
            text = "plan: " + ", ".join(kinds)
        else:
            text = "none"
        if blocked:  # what plan lists as blocked (a removed spec's delete, say) is not "none"
            text = ("" if text == "none" else f"{text}; ") + "blocked: " + ", ".join(blocked)
        kind = want.validation if want is not None else view.get("type")
        renewal, window, next_renewal = _renewal(kind, want, live.auto_renewal_start if live else None,
                                                 staging, production)
        staging_expiry = staging.not_after if staging else None
        production_expiry = production.not_after if production else None
        rows.append(StatusRow(
            name=name,
            enrollment_id=live.enrollment_id if live is not None else (entry.enrollment_id if entry else None),
            type=kind,
            common_name=(live.common_name if live is not None else
                         want.common_name if want is not None else entry.common_name if entry else None),
            san_count=len(view["sans"]) if "sans" in view else None,
            pending=f"{change.change_type or 'change'} #{change.change_id}" if change is not None else None,
            waiting_for=(", ".join(change.allowed_input) or "cps") if change is not None else None,
            staging_expiry=staging_expiry, production_expiry=production_expiry,
            staging_days=_days(staging_expiry, now), production_days=_days(production_expiry, now),
            drift=text,
            staging_not_before=staging.not_before if staging else None,
            production_not_before=production.not_before if production else None,
            renewal=renewal, renewal_window_days=window, next_renewal=next_renewal,
            renewal_days=_days(next_renewal, now),
            expired=tuple(net for net, v in zip(NETWORKS, (staging, production), strict=True)
                          if v is not None and v.not_after <= now),
            waits_on=(waiting.pending.waits_on if waiting is not None and waiting.pending is not None
                      else None),
            next_step=waiting.summary if waiting is not None else None))
    return StatusReport(rows, now)


def expiring(rows: list[StatusRow], days: int) -> list[StatusRow]:
    """Rows with a deployed certificate (staging or production) expiring in fewer than ``days``."""
    return [r for r in rows if any(d is not None and d < days for d in (r.staging_days, r.production_days))]
