"""When a third-party certificate is due for renewal: a pure rule on the spec's policy, what state
recorded and CPS's clock (CPS renews DV certificates by itself; third-party ones only when asked).

===============================================  ============================================
situation                                        result
===============================================  ============================================
``renewal.token`` differs from the one state     due (``renewal-token``), whatever the expiry
last applied
the deployed certificate expires within          due (``renewal-window``)
``renewal.before_expiry`` (CPS's now)
...but the window is not shorter than the        not renewed: every new certificate would be
certificate's lifetime, or the certificate was   due at once (a problem the plan shows)
already inside it when uploaded
no window, no token change, or expiry unknown    not due
===============================================  ============================================

Validity comes from state (recorded at upload) or, for an enrollment state knows no validity of,
from the deployment refresh read for it. Whether a due renewal may run now (no other change in
flight) is the planner's decision, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reconciler.plan.inputs import Desired, ObservedEnrollment
from reconciler.state.model import StateEntry

DAY = 86400.0


@dataclass(frozen=True)
class Due:
    """A renewal the spec asks for: why, in words, and what stops it (if anything)."""

    reason: str
    """``renewal-token`` or ``renewal-window``."""
    summary: str
    problem: str | None = None


def validity(entry: StateEntry, o: ObservedEnrollment | None) -> tuple[datetime | None, datetime | None]:
    """(not before, not after) of the deployed certificate, as far as known."""
    if entry.certificate_not_after is not None:
        return entry.certificate_not_before, entry.certificate_not_after
    if o is not None:
        return o.certificate_not_before, o.certificate_not_after
    return None, None


def expiry_note(name: str, not_after: datetime | None, now: datetime | None) -> str | None:
    """A loud line for a certificate that has expired (an outage: the names serve it anyway)."""
    if not_after is None or now is None or not_after > now:
        return None
    return (f"EXPIRED: {name}'s deployed certificate expired on {not_after:%Y-%m-%d %H:%M} UTC; clients "
            "reject it until a new one is deployed")


def renewal_due(d: Desired, entry: StateEntry, o: ObservedEnrollment | None, now: datetime | None) -> Due | None:
    """Whether the spec asks for a renewal now (see the module table)."""
    policy = d.policy
    if d.validation != "third-party":
        return None
    if policy.renewal_token is not None and policy.renewal_token != entry.renewal_applied:
        was = f" (last applied: {entry.renewal_applied})" if entry.renewal_applied else ""
        return Due("renewal-token", f"renewal token {policy.renewal_token!r}{was}: renew once")
    not_before, not_after = validity(entry, o)
    if policy.renewal_days is None or not_after is None or now is None:
        return None
    left = (not_after - now).total_seconds() / DAY
    if left > policy.renewal_days:
        return None
    when = f"certificate expires {not_after:%Y-%m-%d}"
    summary = (f"{when} ({max(0, int(left))} days left, renewal window {policy.renewal_days:g}d): renew"
               if left > 0 else f"{when}, already expired: renew")
    uploaded = entry.certificate_uploaded_at
    if uploaded is not None and (not_after - uploaded).total_seconds() / DAY <= policy.renewal_days:
        return Due("renewal-window", summary,
                   f"the certificate uploaded on {uploaded:%Y-%m-%d} was already inside the renewal window "
                   f"({policy.renewal_days:g}d) when it went up: renewing again would give the same; the "
                   "signer issues certificates too short, or dates them by a clock behind CPS's")
    if not_before is not None and (not_after - not_before).total_seconds() / DAY <= policy.renewal_days:
        lifetime = (not_after - not_before).total_seconds() / DAY
        return Due("renewal-window", summary,
                   f"the renewal window ({policy.renewal_days:g}d) is not shorter than the certificate's lifetime "
                   f"({lifetime:.0f}d): every new certificate would be due at once")
    return Due("renewal-window", summary)


__all__ = ["DAY", "Due", "expiry_note", "renewal_due", "validity"]
