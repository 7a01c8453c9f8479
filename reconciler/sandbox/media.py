"""Media-type negotiation for the sandbox: exactly the versions it serves, and down-conversion.

CPS negotiates versions exactly (CPS-API.md section 1): ``Accept`` must name a version the
operation knows, request bodies must declare one in ``Content-Type``. The sandbox serves the set
chosen in CPS-API.md section 10 and refuses the rest (406 for ``Accept``, 415 for
``Content-Type``). The engine answers in the newest shapes; the older served versions are made by
dropping what they lack (``fipsMode``, the only field v12/v8/v6 added).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from typing import Any

from reconciler.sandbox.problems import ApiProblem

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


def _drop_fips(network_configuration: Any) -> None:
    if isinstance(network_configuration, dict):
        network_configuration.pop("fipsMode", None)


def _enrollment_v11(body: dict[str, Any]) -> dict[str, Any]:
    _drop_fips(body.get("networkConfiguration"))
    return body


def _enrollments_v11(body: dict[str, Any]) -> dict[str, Any]:
    for item in body.get("enrollments") or []:
        _enrollment_v11(item)
    return body


def _deployment_v7(body: dict[str, Any]) -> dict[str, Any]:
    _drop_fips(body.get("networkConfiguration"))
    return body


def _deployments_v7(body: dict[str, Any]) -> dict[str, Any]:
    for network in ("production", "staging"):
        if isinstance(body.get(network), dict):
            _deployment_v7(body[network])
    return body


def _change_management_info_v5(body: dict[str, Any]) -> dict[str, Any]:
    pending = body.get("pendingState")
    network = pending.get("pendingNetworkConfiguration") if isinstance(pending, dict) else None
    if isinstance(network, dict):
        _drop_fips(network)
        names = network.get("dnsNameSettings")
        # v6 made dnsNames nullable; v5 wants a list (an empty one when names are cloned).
        if isinstance(names, dict) and names.get("dnsNames") is None:
            names["dnsNames"] = []
    return body


# Older served version -> how to make it from the newest shape. change.v1 has the v2 shape.
_DOWN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "enrollment.v11": _enrollment_v11,
    "enrollments.v11": _enrollments_v11,
    "deployment.v7": _deployment_v7,
    "deployments.v7": _deployments_v7,
    "change-management-info.v5": _change_management_info_v5,
}


def convert(body: dict[str, Any], version: str) -> dict[str, Any]:
    """The engine's newest-shape ``body`` as the served ``version`` (a copy when it changes)."""
    down = _DOWN.get(version)
    return down(copy.deepcopy(body)) if down else body


# Served versions per operation (CPS-API.md section 10); the first is the newest.
ENROLLMENT = ("enrollment.v12", "enrollment.v11")
ENROLLMENTS = ("enrollments.v12", "enrollments.v11")
ENROLLMENT_STATUS = ("enrollment-status.v1",)
CHANGE = ("change.v2", "change.v1")
CHANGE_ID = ("change-id.v1",)
DEPLOYMENT_SCHEDULE = ("deployment-schedule.v1",)
DEPLOYMENT = ("deployment.v8", "deployment.v7")
DEPLOYMENTS = ("deployments.v8", "deployments.v7")
CHANGE_HISTORY = ("change-history.v5",)
CERTIFICATE_HISTORY = ("certificate-history.v2",)
DV_HISTORY = ("dv-history.v1",)
CHANGE_MANAGEMENT_INFO = ("change-management-info.v6", "change-management-info.v5")

# GET .../input/info/{infoType}: what each path segment may answer (CPS-API.md section 5.3).
# change-management-info also answers the staged deployment when asked with a deployment type.
INFO_TYPES: dict[str, tuple[str, ...]] = {
    "lets-encrypt-challenges": ("dv-challenges.v2",),
    "third-party-csr": ("csr.v2",),
    "pre-verification-warnings": ("warnings.v1",),
    "post-verification-warnings": ("warnings.v1",),
    "change-management-info": CHANGE_MANAGEMENT_INFO + DEPLOYMENT,
}

# POST .../input/update/{updateType}: the body versions each path segment accepts.
UPDATE_TYPES: dict[str, tuple[str, ...]] = {
    "lets-encrypt-challenges-completed": ("acknowledgement.v1",),
    "third-party-cert-and-trust-chain": ("certificate-and-trust-chain.v2",),
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
