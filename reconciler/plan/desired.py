"""Loaded specs -> the planner's :class:`Desired` inputs (views computed once, policy extracted)."""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.cps.mapping import cps_view
from reconciler.plan.inputs import Desired, Policy
from reconciler.spec.loader import LoadedSpec, LoadedSpecs
from reconciler.spec.models import DvEnrollmentSpec


def policy_of(loaded: LoadedSpec) -> Policy:
    """The workflow policy a spec sets (what apply may do without a person)."""
    spec = loaded.spec
    common = {
        "prevent_destroy": spec.prevent_destroy,
        "wait_for_deployment": spec.wait_for_deployment,
        "allow_duplicate_common_name": spec.allow_duplicate_common_name,
        "acknowledge_pre_verification_warnings": spec.acknowledge_pre_verification_warnings,
        "acknowledge_post_verification_warnings": spec.acknowledge_post_verification_warnings,
        "auto_approve_warnings": tuple(spec.auto_approve_warnings),
        "change_management": spec.change_management,
        "acknowledge_change_management": spec.acknowledge_change_management,
        "deploy_not_before": spec.deploy_not_before.isoformat() if spec.deploy_not_before else None,
        "deploy_not_after": spec.deploy_not_after.isoformat() if spec.deploy_not_after else None,
    }
    if isinstance(spec, DvEnrollmentSpec):
        return Policy(**common, publisher=spec.validation.publisher, challenge_method=spec.validation.method)
    in_use = ["rsa", "ecdsa"] if spec.dual_stack else ["rsa"]
    configured = [k for k in in_use if getattr(spec.certificates, k) is not None]
    ready = tuple(k for k in configured if k not in loaded.waiting)
    # Uploading needs every key type in use; a partial set still waits on a person.
    files = ready if len(ready) == len(in_use) else ()
    return Policy(**common, signer=spec.signer is not None, certificate_files=files,
                  renewal_days=spec.renewal.before_expiry, renewal_token=spec.renewal.token)


def desired_of(loaded: LoadedSpec) -> Desired:
    spec = loaded.spec
    return Desired(name=spec.name, validation=spec.type, contract_id=spec.contract_id or "",
                   common_name=spec.common_name, view=cps_view(spec), spec_hash=loaded.spec_hash,
                   policy=policy_of(loaded), moved_from=spec.moved_from, file=loaded.file, line=loaded.line)


def desired_from_loaded(loaded: LoadedSpecs | Iterable[LoadedSpec]) -> list[Desired]:
    """Every loaded spec as planner input, in load order."""
    specs = loaded.specs if isinstance(loaded, LoadedSpecs) else loaded
    return [desired_of(s) for s in specs]
