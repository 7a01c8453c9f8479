"""What a CPS change waits for, who can give it, and the steps an action will walk.

The plan is driven from ``allowedInput`` types (CPS-API.md 5.3), never from status names, except
to describe a change that waits on CPS alone. Steps are prose for reviewers; the executor follows
the live ``allowedInput`` itself, so a step list is a promise of scope, not a script.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.plan.inputs import Desired, ObservedChange, Policy
from reconciler.plan.model import FieldChange, PendingInfo, WaitsOn
from reconciler.state.model import StateEntry

LETS_ENCRYPT = "lets-encrypt-challenges"
THIRD_PARTY_CERT = "third-party-certificate"
PRE_WARNINGS = "pre-verification-warnings-acknowledgement"
POST_WARNINGS = "post-verification-warnings-acknowledgement"
CHANGE_MANAGEMENT = "change-management"

_DEPLOY_STATUSES = ("deploy", "wait-deploy")

SANS_REMOVED = "SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT"
"""The pre-verification warning CPS raises on a change that removes names (CPS-API.md 4)."""


def can_answer(input_type: str, policy: Policy) -> bool:
    """Whether apply may give this input without a person, per the spec's policy."""
    if input_type == LETS_ENCRYPT:
        return policy.publisher not in (None, "manual")
    if input_type == THIRD_PARTY_CERT:
        return policy.signer or bool(policy.certificate_files)
    if input_type == PRE_WARNINGS:
        return policy.acknowledge_pre_verification_warnings or bool(policy.auto_approve_warnings)
    if input_type == POST_WARNINGS:
        return policy.acknowledge_post_verification_warnings or bool(policy.auto_approve_warnings)
    if input_type == CHANGE_MANAGEMENT:
        return policy.acknowledge_change_management
    return False


def _already_answered(input_type: str, change: ObservedChange, entry: StateEntry | None) -> bool:
    # Challenges stay offered while the CA validates; once apply published them for this change,
    # offering them again is CPS working, not a job for apply.
    if input_type != LETS_ENCRYPT or entry is None:
        return False
    return any(c.change_id == change.change_id for c in entry.challenges)


def waits_on(change: ObservedChange, policy: Policy, entry: StateEntry | None) -> WaitsOn:
    """``apply`` if apply can give an input now, ``person`` if only a person can, else ``cps``."""
    open_inputs = [t for t in change.allowed_input if not _already_answered(t, change, entry)]
    if change.state == "error":
        return "person"
    if any(can_answer(t, policy) for t in open_inputs):
        return "apply"
    if open_inputs:
        return "person"
    return "cps"


def pending_info(change: ObservedChange, policy: Policy, entry: StateEntry | None) -> PendingInfo:
    return PendingInfo(change_id=change.change_id, change_type=change.change_type, status=change.status,
                       state=change.state, description=change.description or change.error,
                       waiting_for=change.allowed_input, waits_on=waits_on(change, policy, entry))


def _input_steps(input_type: str, policy: Policy) -> list[str]:
    if input_type == LETS_ENCRYPT:
        method = policy.challenge_method or "dns-01"
        return [f"publish DV challenges ({method} via {policy.publisher})", "acknowledge DV challenges"]
    if input_type == THIRD_PARTY_CERT:
        if policy.signer:
            return ["export CSRs", "sign CSRs (signer hook)", "check and upload certificates"]
        return [f"check and upload certificates ({', '.join(policy.certificate_files)})"]
    if input_type == PRE_WARNINGS:
        return ["acknowledge pre-verification warnings (per spec policy)"]
    if input_type == POST_WARNINGS:
        return ["acknowledge post-verification warnings (per spec policy)"]
    if input_type == CHANGE_MANAGEMENT:
        return ["acknowledge change management (release to production)"]
    return [f"give input {input_type}"]


def person_hint(change: ObservedChange, policy: Policy, name: str = "NAME") -> str:
    """What a person has to do for a change apply cannot move on."""
    if change.state == "error":
        return (f"change {change.change_id} failed in CPS ({change.error or change.status}); cancel it "
                "(apply --cancel-pending with a spec change, or Control Center) and apply again")
    hints = []
    for t in change.allowed_input:
        if t == LETS_ENCRYPT:
            hints.append(f"publish the DV challenges shown by `reconcile challenges {name}`")
        elif t == THIRD_PARTY_CERT:
            hints.append(f"sign the CSRs from `reconcile csr {name}` and add the certificate files to the spec")
        elif t in (PRE_WARNINGS, POST_WARNINGS):
            hints.append("review the warnings, then allow them in the spec (acknowledge_*_warnings)")
        elif t == CHANGE_MANAGEMENT:
            hints.append("set acknowledge_change_management: true or acknowledge in Control Center")
        else:
            hints.append(f"give input {t}")
    return "; ".join(hints)


def continue_steps(change: ObservedChange, policy: Policy, entry: StateEntry | None) -> tuple[str, ...]:
    steps: list[str] = []
    for t in change.allowed_input:
        if can_answer(t, policy) and not _already_answered(t, change, entry):
            steps += _input_steps(t, policy)
    steps += _tail(policy, first_certificate=False)
    return tuple(steps)


def waiting_steps(change: ObservedChange, policy: Policy) -> tuple[str, ...]:
    """Steps of an ``in-progress`` action: only waiting, and only if the spec asks apply to wait."""
    if policy.wait_for_deployment:
        what = "deployment" if _is_deploying(change) else "CPS"
        return (f"wait for {what} ({change.status or change.state or 'running'})",)
    return ()


def _is_deploying(change: ObservedChange) -> bool:
    return any(s in (change.status or "") for s in _DEPLOY_STATUSES)


def _tail(policy: Policy, *, first_certificate: bool) -> list[str]:
    steps = []
    if first_certificate and policy.acknowledge_post_verification_warnings:
        steps.append("acknowledge post-verification warnings if any (per spec policy)")
    if first_certificate and policy.change_management:
        steps.append("acknowledge change management" if policy.acknowledge_change_management
                     else "wait for change management acknowledgement (a person)")
    if policy.wait_for_deployment:
        steps.append("wait for deployment")
    return steps


def certificate_steps(desired: Desired) -> list[str]:
    """The workflow of a new certificate (create, or an update that needs one)."""
    p = desired.policy
    steps: list[str] = []
    if desired.validation == "dv":
        if p.publisher in (None, "manual"):
            steps += ["show DV challenges for manual publication (a person publishes them)",
                      "wait for domain validation"]
        else:
            steps += _input_steps(LETS_ENCRYPT, p) + ["wait for domain validation"]
    else:
        if p.signer or p.certificate_files:
            steps += _input_steps(THIRD_PARTY_CERT, p)
        else:
            steps += ["export CSRs (a person has the CA sign them)"]
    return steps + _tail(p, first_certificate=True)


def create_steps(desired: Desired) -> tuple[str, ...]:
    return ("create enrollment", *certificate_steps(desired))


def removed_sans(changes: Sequence[FieldChange]) -> list[str]:
    """Names in CPS's ``sans`` that the spec no longer has."""
    for change in changes:
        if change.path == "sans" and isinstance(change.old, list):
            kept = set(change.new) if isinstance(change.new, list) else set()
            return [name for name in change.old if name not in kept]
    return []


def sans_removed_step(policy: Policy, removed: Sequence[str]) -> str:
    """What removing ``removed`` will ask for, and whether the spec's policy gives it."""
    names = ", ".join(removed)
    if policy.acknowledge_pre_verification_warnings:
        allowed = "acknowledge_pre_verification_warnings: true"
    elif SANS_REMOVED in {c.upper() for c in policy.auto_approve_warnings}:
        allowed = f"{SANS_REMOVED} is in auto_approve_warnings"
    else:
        return (f"wait for a person to acknowledge the pre-verification warning {SANS_REMOVED} (removing "
                f"{names}): the spec does not allow it; add {SANS_REMOVED} to auto_approve_warnings or set "
                "acknowledge_pre_verification_warnings: true to let apply do it")
    return f"acknowledge the pre-verification warning {SANS_REMOVED} (removing {names}; allowed: {allowed})"


def update_steps(desired: Desired, kind: str, metadata_only: bool, cancels: int | None,
                 changes: Sequence[FieldChange] = ()) -> tuple[str, ...]:
    steps = [f"cancel pending change {cancels}"] if cancels is not None else []
    if metadata_only:
        return (*steps, "update enrollment (contacts/organisation only: no new certificate, no deployment)")
    if kind == "update-network":
        tail = ["wait for deployment"] if desired.policy.wait_for_deployment else []
        return (*steps, "update enrollment (network settings: current certificate redeployed, no new one)",
                *tail)
    removed = removed_sans(changes)
    warning = [sans_removed_step(desired.policy, removed)] if removed else []
    return (*steps, "update enrollment (new certificate)", *warning, *certificate_steps(desired))
