"""Saved plans (``reconcile plan --out FILE``) and the freshness check ``apply FILE`` runs.

A saved plan is the plan's JSON plus a checksum over it. It records the state lineage and serial,
and per action the live facts it rested on (:class:`LiveFacts`: enrollment id, a hash of the
enrollment as read, the pending change id and status, same-CN enrollments). Apply re-reads CPS
and calls :func:`check_fresh`; any difference makes the plan stale, because CPS moves on its own
(a validation completes, a deployment finishes) and a plan made before that may be wrong now.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from reconciler.errors import StateError
from reconciler.plan.inputs import Observed
from reconciler.plan.model import PLAN_FORMAT_VERSION, Action, Plan, data_checksum
from reconciler.state.model import State

PLAN_FILE_KIND = "cps-reconciler-plan"


def save_plan(plan: Plan, path: Path) -> str:
    """Write ``plan`` to ``path`` (atomically); returns its checksum."""
    data = plan.to_data()
    data["kind"] = PLAN_FILE_KIND
    checksum = data_checksum(data)
    data["checksum"] = checksum
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return checksum


def load_saved_plan(path: Path) -> Plan:
    """Read a plan file; refuse one that is not a plan, is from a newer version, or was edited."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{path}: not a readable plan file ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != PLAN_FILE_KIND:
        raise StateError(f"{path}: not a plan file written by `reconcile plan --out`")
    version = data.get("format_version")
    if version != PLAN_FORMAT_VERSION:
        raise StateError(f"{path}: plan format version {version}; this reconciler reads {PLAN_FORMAT_VERSION}")
    if data.get("checksum") != data_checksum(data):
        raise StateError(f"{path}: checksum mismatch: the plan file was modified after it was saved")
    try:
        return Plan.from_data({k: v for k, v in data.items() if k != "kind"})
    except ValidationError as exc:
        raise StateError(f"{path}: malformed plan file ({exc.error_count()} problems)") from None


def _fact_drift(action: Action, observed: Observed) -> list[str]:
    facts = action.facts
    if facts is None:
        return []
    name = action.name
    if action.kind == "create":
        now = tuple(sorted(c.enrollment_id for c in observed.candidates.get(name, ())))
        if name in observed.bound:
            return [f"{name}: enrollment {observed.bound[name].enrollment_id} is now bound in state"]
        if now != facts.same_cn_ids:
            return [f"{name}: enrollments with its CN changed ({list(facts.same_cn_ids)} -> {list(now)})"]
        return []
    bound_as = action.entry_name or name  # a move or replacement is not applied yet: the old binding
    if action.kind == "adopt":
        found = [c for c in observed.candidates.get(name, ()) if c.enrollment_id == facts.enrollment_id]
        current = found[0] if found else observed.bound.get(bound_as)
    else:
        current = observed.bound.get(bound_as)
    if current is None or current.enrollment_id != facts.enrollment_id:
        return [f"{name}: enrollment {facts.enrollment_id} is gone or no longer bound"]
    reasons = []
    change = current.active_change
    cid, status = (change.change_id, change.status) if change else (None, None)
    if (cid, status) != (facts.change_id, facts.change_status):
        reasons.append(f"{name}: pending change moved ({facts.change_id} {facts.change_status} -> {cid} {status})")
    elif current.fingerprint != facts.enrollment_hash:
        reasons.append(f"{name}: enrollment {facts.enrollment_id} changed in CPS since the plan was made")
    return reasons


def check_fresh(plan: Plan, state: State, observed: Observed | None,
                desired_hashes: Mapping[str, str] | None = None) -> list[str]:
    """Reasons ``plan`` no longer holds (empty: still fresh). Apply raises ``StalePlan`` on any.

    ``observed`` is a fresh refresh (None skips the live checks, for plans made with
    ``--no-refresh``); ``desired_hashes`` maps spec names to their current spec hash.
    """
    reasons = []
    if plan.state_serial == 0:
        # There was no state file at plan time, so its lineage was a throwaway: only "still none" counts.
        if state.serial != 0:
            reasons.append(f"state serial is {state.serial}, the plan was made before any state was written "
                           "(another apply ran since)")
    elif state.lineage != plan.state_lineage:
        reasons.append(f"state lineage is {state.lineage}, the plan was made for {plan.state_lineage}")
    elif state.serial != plan.state_serial:
        reasons.append(f"state serial is {state.serial}, the plan was made at serial {plan.state_serial} "
                       "(another apply ran since)")
    for action in plan.actions:
        if not action.is_change:
            continue
        if desired_hashes is not None and action.spec_hash is not None:
            now = desired_hashes.get(action.name)
            if now != action.spec_hash:
                reasons.append(f"{action.name}: spec changed since the plan was made" if now
                               else f"{action.name}: spec removed since the plan was made")
        if observed is not None and plan.refreshed:
            reasons += _fact_drift(action, observed)
    return list(dict.fromkeys(reasons))
