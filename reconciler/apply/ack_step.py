"""Acknowledgement inputs: pre/post-verification warnings and change management.

Each is given only when the spec allows it; otherwise the enrollment stops waiting for a person,
showing what it would have acknowledged.
"""

from __future__ import annotations

import logging

from reconciler.apply.context import WorkflowContext
from reconciler.apply.warnings import NEVER_AUTO_ACKNOWLEDGED, decide
from reconciler.errors import Conflict, NotFound, WriteOutcomeUnknown

log = logging.getLogger("reconciler.apply")

PRE_WARNINGS = "pre-verification-warnings-acknowledgement"
POST_WARNINGS = "post-verification-warnings-acknowledgement"
CHANGE_MANAGEMENT = "change-management"


async def acknowledge_warnings(ctx: WorkflowContext, enrollment_id: int, change_id: int, input_type: str) -> bool:
    """Acknowledge the change's warnings if the spec allows every one of them."""
    pre = input_type == PRE_WARNINGS
    which = "pre-verification" if pre else "post-verification"
    client = ctx.client
    try:
        if pre:
            warnings = await client.get_pre_verification_warnings(enrollment_id, change_id)
        else:
            warnings = await client.get_post_verification_warnings(enrollment_id, change_id)
    except NotFound:
        return False
    spec = ctx.spec
    allow_all = spec.acknowledge_pre_verification_warnings if pre else spec.acknowledge_post_verification_warnings
    decision = decide(warnings.warnings, acknowledge_all=allow_all, auto_approve=spec.auto_approve_warnings)
    if not decision.acknowledge:
        setting = f"acknowledge_{which.replace('-', '_')}_warnings"
        texts = [str(w) for w in decision.blocking]
        if any(w.code in NEVER_AUTO_ACKNOWLEDGED for w in decision.blocking):
            raise ctx.wait(f"{which} warnings that apply never acknowledges by itself", texts + [
                "the certificate does not match the CSR's key or leaves out names: upload a correct one, "
                "or acknowledge in Control Center if you really mean it"])
        raise ctx.wait(
            f"waiting for acknowledgement of {which} warnings",
            texts + [f"allow them with {setting}: true or auto_approve_warnings: [CODE, ...] in the spec"])
    ctx.step(f"acknowledge {which} warnings", ", ".join(w.code or "?" for w in decision.warnings))
    try:
        if pre:
            await client.acknowledge_pre_verification_warnings(enrollment_id, change_id)
        else:
            await client.acknowledge_post_verification_warnings(enrollment_id, change_id)
    except (Conflict, NotFound, WriteOutcomeUnknown) as exc:
        log.info("%s: %s acknowledgement not taken (%s); re-reading the change", ctx.name, which, exc)
        return False
    ctx.checkpoint("warnings:acknowledged")
    return True


async def acknowledge_change_management(ctx: WorkflowContext, enrollment_id: int, change_id: int) -> bool:
    """Release the certificate on staging to production, if the spec says apply may."""
    if not ctx.spec.acknowledge_change_management:
        raise ctx.wait("waiting for change management acknowledgement (the certificate is on staging)",
                       ["test it on staging, then set acknowledge_change_management: true in the spec "
                        "(or acknowledge in Control Center)"])
    try:
        info = await ctx.client.get_change_management_info(enrollment_id, change_id)
    except NotFound:
        return False
    errors = (info.validation_result.errors or []) if info.validation_result else []
    if errors:
        raise ctx.wait("waiting: change management validation reports errors",
                       [f"{e.message_code or '?'}: {e.message or ''}" for e in errors])
    ctx.step("acknowledge change management")
    try:
        await ctx.client.acknowledge_change_management(enrollment_id, change_id, info.validation_result_hash)
    except (Conflict, NotFound, WriteOutcomeUnknown) as exc:
        log.info("%s: change management acknowledgement not taken (%s); re-reading", ctx.name, exc)
        return False
    ctx.checkpoint("change-management:acknowledged")
    return True
