"""Versioned CPS media types, one constant per entity and version the client speaks.

CPS negotiates versions exactly (CPS-API.md section 1): the ``Accept`` and ``Content-Type`` must name
a version the operation knows. We speak the newest version the official definitions declare and the
sandbox serves (CPS-API.md section 10).
"""

from __future__ import annotations


def media_type(entity: str, version: int) -> str:
    """``application/vnd.akamai.cps.<entity>.v<N>+json``."""
    return f"application/vnd.akamai.cps.{entity}.v{version}+json"


ENROLLMENT = media_type("enrollment", 12)
ENROLLMENTS = media_type("enrollments", 12)
ENROLLMENT_STATUS = media_type("enrollment-status", 1)
CHANGE = media_type("change", 2)
CHANGE_ID = media_type("change-id", 1)
DEPLOYMENT = media_type("deployment", 8)
DEPLOYMENTS = media_type("deployments", 8)
DEPLOYMENT_SCHEDULE = media_type("deployment-schedule", 1)
CHANGE_MANAGEMENT_INFO = media_type("change-management-info", 6)
DV_CHALLENGES = media_type("dv-challenges", 2)
CSR = media_type("csr", 2)
CERTIFICATE_AND_TRUST_CHAIN = media_type("certificate-and-trust-chain", 2)
WARNINGS = media_type("warnings", 1)
ACKNOWLEDGEMENT = media_type("acknowledgement", 1)
ACKNOWLEDGEMENT_WITH_HASH = media_type("acknowledgement-with-hash", 1)
CHANGE_HISTORY = media_type("change-history", 5)
CERTIFICATE_HISTORY = media_type("certificate-history", 2)
DV_HISTORY = media_type("dv-history", 1)

PROBLEM_JSON = "application/problem+json"

# allowedInput.type -> (info path segment, update path segment); they differ (CPS-API.md 5.3).
INPUT_SEGMENTS: dict[str, tuple[str, str]] = {
    "lets-encrypt-challenges": ("lets-encrypt-challenges", "lets-encrypt-challenges-completed"),
    "third-party-certificate": ("third-party-csr", "third-party-cert-and-trust-chain"),
    "pre-verification-warnings-acknowledgement": ("pre-verification-warnings", "pre-verification-warnings-ack"),
    "post-verification-warnings-acknowledgement": (
        "post-verification-warnings",
        "post-verification-warnings-ack",
    ),
    "change-management": ("change-management-info", "change-management-ack"),
}
