"""The Akamai provider's CPS resources in a Terraform state, joined per enrollment.

``collect(state)`` sorts every instance ``tfstate.read_tfstate`` found:

=================================================  ===========================================
instance                                           becomes
=================================================  ===========================================
managed ``akamai_cps_dv_enrollment`` /             one ``TfEnrollment``; its ``id`` attribute
``akamai_cps_third_party_enrollment``              is the enrollment id
managed ``akamai_cps_dv_validation``               joined to the enrollment with its
                                                   ``enrollment_id`` (``validation``)
managed ``akamai_cps_upload_certificate``          joined the same way (``upload``)
managed ``akamai_cps_*`` of any other type         listed in ``unknown``: not migrated, not fatal
validation / upload whose ``enrollment_id`` no     listed in ``orphans``: not migrated
enrollment resource in this state has
data sources, resources of other providers         ignored (they manage nothing in CPS)
=================================================  ===========================================

Refused (``TfStateError``, listing every case, nothing migrated): an enrollment resource without a
numeric ``id``; two enrollment resources, or two validation / upload resources, for one enrollment
id; a CPS resource whose attributes Terraform marks sensitive (the paths are named; values are never
read into a message); a validation / upload resource of the wrong enrollment type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.observe.tfstate import TfInstance, TfStateError, TfStateFile

__all__ = ["DV", "ENROLLMENT_TYPES", "THIRD_PARTY", "TfCps", "TfEnrollment", "collect"]

DV = "akamai_cps_dv_enrollment"
THIRD_PARTY = "akamai_cps_third_party_enrollment"
VALIDATION = "akamai_cps_dv_validation"
UPLOAD = "akamai_cps_upload_certificate"
ENROLLMENT_TYPES = {DV: "dv", THIRD_PARTY: "third-party"}
_JOINED = {VALIDATION: DV, UPLOAD: THIRD_PARTY}


@dataclass(frozen=True)
class TfEnrollment:
    """An enrollment resource and the resources that act on the same enrollment."""

    resource: TfInstance
    enrollment_id: int
    validation: TfInstance | None = None
    upload: TfInstance | None = None

    @property
    def kind(self) -> str:
        """``dv`` or ``third-party``."""
        return ENROLLMENT_TYPES[self.resource.type]

    @property
    def addresses(self) -> list[str]:
        """Every address this migration takes away from Terraform (enrollment first)."""
        return [r.address for r in (self.resource, self.validation, self.upload) if r is not None]


@dataclass
class TfCps:
    """The CPS part of a state: enrollments by id, and what was left out and why."""

    enrollments: list[TfEnrollment]
    unknown: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


def _enrollment_id(value: Any) -> int | None:
    try:
        eid = int(str(value))
    except ValueError:
        return None
    return eid if eid > 0 else None


def collect(state: TfStateFile, source: str) -> TfCps:
    """The CPS enrollments ``state`` manages, joined with their validation and upload resources."""
    problems: list[str] = []
    enrollments: dict[int, TfInstance] = {}
    joined: dict[tuple[str, int], TfInstance] = {}
    result = TfCps([])
    for inst in state.instances:
        if inst.mode != "managed" or not inst.type.startswith("akamai_cps_"):
            continue
        if inst.type not in ENROLLMENT_TYPES and inst.type not in _JOINED:
            result.unknown.append(inst.address)
            continue
        if inst.sensitive:
            problems.append(f"{inst.address}: Terraform marks {', '.join(inst.sensitive)} sensitive; a spec is "
                            "committed in plain text, so these would not stay secret: remove the sensitive marking "
                            "(none of the CPS arguments is a secret) and export the state again")
            continue
        if inst.type in ENROLLMENT_TYPES:
            eid = _enrollment_id(inst.attributes.get("id"))
            if eid is None:
                problems.append(f"{inst.address}: no enrollment id (attribute \"id\"); was it ever created?")
            elif eid in enrollments:
                problems.append(f"{inst.address} and {enrollments[eid].address} both manage enrollment {eid}")
            else:
                enrollments[eid] = inst
            continue
        eid = _enrollment_id(inst.attributes.get("enrollment_id"))
        if eid is None:
            problems.append(f"{inst.address}: no enrollment_id")
        elif (inst.type, eid) in joined:
            problems.append(f"{inst.address} and {joined[inst.type, eid].address} both act on enrollment {eid}")
        else:
            joined[inst.type, eid] = inst
    for (rtype, eid), inst in sorted(joined.items(), key=lambda item: item[1].address):
        owner = enrollments.get(eid)
        if owner is None:
            result.orphans.append(f"{inst.address} (enrollment {eid} has no enrollment resource in this state)")
        elif owner.type != _JOINED[rtype]:
            problems.append(f"{inst.address} acts on enrollment {eid}, which {owner.address} manages: a "
                            f"{rtype} belongs to an {_JOINED[rtype]}")
    if problems:
        raise TfStateError(f"{source}: cannot migrate:\n" + "\n".join(f"  {p}" for p in problems))
    result.enrollments = [
        TfEnrollment(inst, eid, validation=joined.get((VALIDATION, eid)), upload=joined.get((UPLOAD, eid)))
        for eid, inst in sorted(enrollments.items(), key=lambda item: item[1].address)]
    return result


def one(block: Any) -> Mapping[str, Any] | None:
    """A nested block as Terraform stores it (a list of at most one object) as that object."""
    if isinstance(block, list):
        block = block[0] if block else None
    return block if isinstance(block, Mapping) else None
