"""Media-type negotiation for the sandbox: exactly the versions it serves, and down-conversion.

CPS negotiates versions exactly (CPS-API.md section 1): ``Accept`` must name a version the
operation knows, request bodies must declare one in ``Content-Type``. The sandbox serves every
version the official definitions declare and refuses the rest (406 for ``Accept``, 415 for
``Content-Type``). The engine answers in the newest shapes; ``versions`` makes the older ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from reconciler.sandbox.problems import ApiProblem
from reconciler.sandbox.versions import entity, number, reshape, schema_version

PREFIX = "application/vnd.akamai.cps."
SUFFIX = "+json"
PROBLEM_JSON = "application/problem+json"

_VENDOR = re.compile(r"^application/vnd\.akamai\.cps\.([a-z-]+)\.v(\d+)\+json$")


def media_type(entity_version: str) -> str:
    """``enrollment.v12`` -> ``application/vnd.akamai.cps.enrollment.v12+json``."""
    return f"{PREFIX}{entity_version}{SUFFIX}"


def entity_version(media: str) -> str | None:
    """The inverse of ``media_type``; ``None`` for anything that is not a CPS vendor type."""
    match = _VENDOR.match(media)
    return f"{match.group(1)}.v{match.group(2)}" if match else None


def _bare(value: str) -> str:
    # Parameters such as "; charset=utf-8" (the Go SDK sends them) do not change the version.
    return value.split(";", 1)[0].strip().lower()


def negotiate_accept(header: str | None, served: Sequence[str]) -> str:
    """Pick the served entity version the ``Accept`` header names (first listed wins).

    The definitions make ``Accept`` required and CPS versions are exact, so a missing header, a
    wildcard or an unserved version is refused with 406 [sandbox: CPS-API.md section 1].
    """
    offered = [_bare(part) for part in (header or "").split(",") if part.strip()]
    for media in offered:
        version = entity_version(media)
        if version is not None and version in served:
            return version
    wanted = ", ".join(media_type(v) for v in served)
    got = header.strip() if header else "nothing"
    raise ApiProblem(406, "not-acceptable", "Not Acceptable",
                     f"The Accept header names {got}; this operation produces {wanted}.")


def negotiate_content_type(header: str | None, accepted: Sequence[str]) -> str:
    """The entity version of a request body, from ``Content-Type``; 415 when it is not accepted."""
    version = entity_version(_bare(header)) if header else None
    if version is not None and version in accepted:
        return version
    wanted = ", ".join(media_type(v) for v in accepted)
    got = header.strip() if header else "no Content-Type"
    raise ApiProblem(415, "unsupported-media-type", "Unsupported Media Type",
                     f"The request body is {got}; this operation consumes {wanted}.")


def _versions(entity: str, *numbers: int) -> tuple[str, ...]:
    return tuple(f"{entity}.v{n}" for n in numbers)


# Served versions per operation: every version the official definitions declare (headers/ and the
# operation definitions, CPS-API.md section 12.7); the first is the newest, the engine's own shape.
ENROLLMENT = _versions("enrollment", *range(12, 0, -1))
ENROLLMENTS = _versions("enrollments", *range(12, 0, -1))
ENROLLMENT_STATUS = ("enrollment-status.v1",)
CHANGE = _versions("change", 5, 4, 3, 2, 1)
CHANGE_ID = ("change-id.v1",)
DEPLOYMENT_SCHEDULE = ("deployment-schedule.v1",)
DEPLOYMENT = _versions("deployment", 8, 7, 6, 3)
DEPLOYMENTS = _versions("deployments", *range(8, 0, -1))
CHANGE_HISTORY = _versions("change-history", 5, 4, 3, 2, 1)
CERTIFICATE_HISTORY = _versions("certificate-history", 2, 1)
DV_HISTORY = ("dv-history.v1",)
CHANGE_MANAGEMENT_INFO = _versions("change-management-info", 6, 5, 4, 2, 1)

# GET .../input/info/{infoType}: what each path segment may answer (CPS-API.md section 5.3).
# change-management-info also answers the staged deployment when asked with a deployment type.
INFO_TYPES: dict[str, tuple[str, ...]] = {
    "lets-encrypt-challenges": _versions("dv-challenges", 2, 1),
    "third-party-csr": _versions("csr", 2, 1),
    "pre-verification-warnings": ("warnings.v1",),
    "post-verification-warnings": ("warnings.v1",),
    "change-management-info": CHANGE_MANAGEMENT_INFO + DEPLOYMENT,
}

# POST .../input/update/{updateType}: the body versions each path segment accepts.
UPDATE_TYPES: dict[str, tuple[str, ...]] = {
    "lets-encrypt-challenges-completed": ("acknowledgement.v1",),
    "third-party-cert-and-trust-chain": _versions("certificate-and-trust-chain", 2, 1),
    "pre-verification-warnings-ack": ("acknowledgement.v1",),
    "post-verification-warnings-ack": ("acknowledgement.v1",),
    "change-management-ack": ("acknowledgement-with-hash.v1", "acknowledgement.v1"),
}

ALL_SERVED: frozenset[str] = frozenset(
    {*ENROLLMENT, *ENROLLMENTS, *ENROLLMENT_STATUS, *CHANGE, *CHANGE_ID, *DEPLOYMENT_SCHEDULE,
     *DEPLOYMENT, *DEPLOYMENTS, *CHANGE_HISTORY, *CERTIFICATE_HISTORY, *DV_HISTORY,
     *CHANGE_MANAGEMENT_INFO}
    | {v for versions in INFO_TYPES.values() for v in versions}
    | {v for versions in UPDATE_TYPES.values() for v in versions}
)


def _newest_shapes() -> frozenset[str]:
    newest: dict[str, str] = {}
    for version in ALL_SERVED:
        family = entity(version)
        if family not in newest or number(version) > number(newest[family]):
            newest[family] = version
    return frozenset(schema_version(v) for v in newest.values())


# The shapes the engine answers in (the newest version of each entity); the others are made.
NEWEST = _newest_shapes()


def convert(body: dict[str, Any], version: str) -> dict[str, Any]:
    """The engine's newest-shape ``body`` as the served ``version`` (a new document when it differs)."""
    return body if schema_version(version) in NEWEST else reshape(body, version)
