"""Pre- and post-verification warnings: which codes a warning text carries, and whether the spec
lets apply acknowledge them without a person.

CPS sends warnings as one text, one warning per line (``warnings.v1``); post-verification texts
start with a ``[WARNINGS]`` header and may append the chain that will be used. A line carries its
code either explicitly (``CODE: text`` or ``[CODE] text``, as the sandbox writes them) or only as
prose, which is matched against the templates below (the well-known ones; the full catalogue
lives in the Akamai Terraform provider). A warning whose code cannot be told is never
auto-approved by code: only ``acknowledge_*_warnings: true`` covers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EXPLICIT = re.compile(r"^\s*(?:\[(?P<bracket>[A-Z][A-Z0-9_]{2,})\]|(?P<plain>[A-Z][A-Z0-9_]{2,})\s*:)")
_HEADERS = {"WARNINGS", "ERRORS"}
# Findings about one certificate of a dual-stack pair are prefixed with its key type.
_KEY_PREFIX = re.compile(r"^\s*(?:RSA|ECDSA)\s*:\s*")
# Prose templates -> code, for warnings that arrive without their code.
_TEMPLATES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), code) for pattern, code in (
        (r"does not (include|cover) .*names|missing san", "CSR_VS_CERTIFICATE_MISSING_SAN_FROM_SAN_LIST_IN_CERTIFICATE"),
        (r"san.*removed.*acknowledg|removed.*from the certificate", "SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT"),
        (r"expir\w* .*(too short|less than)", "CERTIFICATE_EXPIRATION_TOO_SHORT"),
        (r"key .*(does not|doesn't) match|key mismatch", "CSR_VS_CERTIFICATE_KEY_MISMATCH"),
        (r"trust chain is empty", "TRUST_CHAIN_EMPTY_AND_CERTIFICATE_SIGNED_BY_NON_STANDARD_ROOT"),
        (r"non-standard root|not a standard root", "TRUST_CHAIN_TERMINATES_WITH_NON_STANDARD_CERTIFICATE"),
        (r"end.entity certificate .*trust chain", "END_ENTITY_CERT_IN_TRUST_CHAIN"),
        (r"extra certificate .*trust chain", "EXTRA_CERT_IN_TRUST_CHAIN"),
        (r"caa", "DNS_NAME_CAA_NOT_VALIDATED"),
    )
)


@dataclass(frozen=True)
class CpsWarning:
    """One warning line and its code (None when it could not be recognised)."""

    text: str
    code: str | None

    def __str__(self) -> str:
        """``CODE: text``, without saying the code twice when the text starts with it."""
        code = self.code or "UNRECOGNISED"
        return self.text if code in self.text else f"{code}: {self.text}"


def parse_warnings(text: str | None) -> list[CpsWarning]:
    """Split a ``warnings.v1`` text into warnings; headers and PEM blocks are not warnings."""
    found: list[CpsWarning] = []
    in_pem = False
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("-----BEGIN"):
            in_pem = True
        if in_pem:
            in_pem = not line.startswith("-----END")
            continue
        shown = line
        line = _KEY_PREFIX.sub("", line) or line
        match = _EXPLICIT.match(line)
        code = (match.group("bracket") or match.group("plain")) if match else None
        if code in _HEADERS:
            rest = line[match.end():].strip() if match else ""
            if not rest:
                continue
            line = shown = rest
            match = _EXPLICIT.match(rest)
            code = (match.group("bracket") or match.group("plain")) if match else None
        if code is None:
            code = next((c for pattern, c in _TEMPLATES if pattern.search(line)), None)
        found.append(CpsWarning(text=shown, code=code))
    return found


# Warnings no policy may acknowledge for a person: the certificate CPS would deploy does not
# belong to the CSR's key, or leaves out names the enrollment serves (an outage for those names).
NEVER_AUTO_ACKNOWLEDGED = frozenset({
    "CSR_VS_CERTIFICATE_KEY_MISMATCH",
    "CSR_VS_CERTIFICATE_MISSING_SAN_FROM_SAN_LIST_IN_CERTIFICATE",
})


@dataclass(frozen=True)
class WarningDecision:
    """Whether to acknowledge, and the warnings a person must review otherwise."""

    acknowledge: bool
    blocking: tuple[CpsWarning, ...]
    warnings: tuple[CpsWarning, ...]


def decide(text: str | None, *, acknowledge_all: bool, auto_approve: list[str] | tuple[str, ...]) -> WarningDecision:
    """Acknowledge when the spec says so, or when every warning's code is in ``auto_approve``;
    never when a warning is one of ``NEVER_AUTO_ACKNOWLEDGED``, whatever the spec says."""
    warnings = tuple(parse_warnings(text))
    dangerous = tuple(w for w in warnings if w.code in NEVER_AUTO_ACKNOWLEDGED)
    if dangerous:
        return WarningDecision(False, dangerous, warnings)
    if acknowledge_all:
        return WarningDecision(True, (), warnings)
    allowed = {c.upper() for c in auto_approve}
    blocking = tuple(w for w in warnings if w.code is None or w.code not in allowed)
    return WarningDecision(not blocking, blocking, warnings)
