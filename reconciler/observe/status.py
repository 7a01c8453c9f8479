"""The estate at a glance: one row per enrollment known to the specs and/or the state file.

Status plans exactly like ``plan`` does (same refresh, same diff), so its pending-change and drift
columns never disagree with the plan, then reads each bound enrollment's staging and production
deployments for certificate expiry.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from reconciler.cps.client import CpsClient
from reconciler.cps.models import Deployment
from reconciler.plan.inputs import Revision
from reconciler.plan.pipeline import build_plan
from reconciler.plan.planner import PlanOptions
from reconciler.spec.loader import LoadedSpecs
from reconciler.state.model import State

DEFAULT_THRESHOLD_DAYS = 30


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

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("staging_expiry", "production_expiry"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


def _expiry(deployment: Deployment | None) -> datetime | None:
    """Earliest expiry of the certificates a network serves (None: nothing deployed)."""
    if deployment is None:
        return None
    found: list[datetime] = []
    for cert in deployment.certificates:
        if cert.certificate:
            leaf = x509.load_pem_x509_certificate(cert.certificate.encode())
            found.append(leaf.not_valid_after_utc)
        elif cert.expiry:
            found.append(datetime.fromisoformat(cert.expiry.replace("Z", "+00:00")))
    return min(found) if found else None


async def _deployments(client: CpsClient, eid: int) -> tuple[datetime | None, datetime | None]:
    staging, production = await asyncio.gather(client.get_staging_deployment(eid),
                                                client.get_production_deployment(eid))
    return _expiry(staging), _expiry(production)


def _days(expiry: datetime | None, now: datetime) -> int | None:
    return None if expiry is None else int((expiry - now).total_seconds() // 86400)


async def collect_status(specs: LoadedSpecs, state: State, client: CpsClient, now: datetime, *,
                         revision: Revision | None = None) -> list[StatusRow]:
    """Rows sorted by name for every spec and every state entry, read live through ``client``
    (``revision``: the checkout, so that status calls drift what plan calls drift)."""
    result = await build_plan(specs, state, client, PlanOptions(now=now.isoformat(timespec="seconds"),
                                                                revision=revision or Revision()))
    plan, observed = result.plan, result.observed
    desired = {d.name: d for d in result.desired}
    drift = {d.name: d for d in plan.drift}
    names = sorted(set(desired) | set(state.entries))
    bound = observed.bound if observed is not None else {}
    expiries = await asyncio.gather(*(_deployments(client, bound[n].enrollment_id) for n in names if n in bound))
    by_name = dict(zip([n for n in names if n in bound], expiries, strict=True))
    rows: list[StatusRow] = []
    for name in names:
        live = bound.get(name)
        want = desired.get(name)
        entry = state.entry(name)
        view = live.view if live is not None else (want.view if want is not None else {})
        change = live.active_change if live is not None else None
        staging, production = by_name.get(name, (None, None))
        kinds = sorted({a.kind for a in plan.actions_for(name) if a.is_change})
        blocked = sorted({a.kind for a in plan.blocked if a.name == name})
        if name in drift:
            d = drift[name]
            text = "gone" if d.kind == "gone" else "changed: " + ", ".join(c.path for c in d.changes)
        elif kinds:
            text = "plan: " + ", ".join(kinds)
        else:
            text = "none"
        if blocked:  # what plan lists as blocked (a removed spec's delete, say) is not "none"
            text = ("" if text == "none" else f"{text}; ") + "blocked: " + ", ".join(blocked)
        rows.append(StatusRow(
            name=name,
            enrollment_id=live.enrollment_id if live is not None else (entry.enrollment_id if entry else None),
            type=want.validation if want is not None else view.get("type"),
            common_name=(live.common_name if live is not None else
                         want.common_name if want is not None else entry.common_name if entry else None),
            san_count=len(view["sans"]) if "sans" in view else None,
            pending=f"{change.change_type or 'change'} #{change.change_id}" if change is not None else None,
            waiting_for=(", ".join(change.allowed_input) or "cps") if change is not None else None,
            staging_expiry=staging, production_expiry=production,
            staging_days=_days(staging, now), production_days=_days(production, now),
            drift=text))
    return rows


def expiring(rows: list[StatusRow], days: int) -> list[StatusRow]:
    """Rows with a deployed certificate (staging or production) expiring in fewer than ``days``."""
    return [r for r in rows if any(d is not None and d < days for d in (r.staging_days, r.production_days))]
