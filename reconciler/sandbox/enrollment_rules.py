"""What CPS does with an enrollment body: normalise it, check its semantics, classify an edit.

The app has already validated the body against the schema of its media version; these rules add
what a schema cannot say (SAN limits, immutable fields, recipe consistency) and decide what a PUT
means (CPS-API.md section 3.3). The stored body always has every ``enrollment.v12`` key.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from reconciler.sandbox.problems import bad_request

Json = dict[str, Any]

READ_ONLY = frozenset(
    {
        "id",
        "location",
        "pendingChanges",
        "maxAllowedSanNames",
        "maxAllowedWildcardSanNames",
        "assignedSlots",
        "productionSlots",
        "stagingSlots",
        "autoRenewalStartTime",
    }
)
WRITABLE = (
    "ra",
    "validationType",
    "certificateType",
    "certificateChainType",
    "signatureAlgorithm",
    "changeManagement",
    "orgId",
    "enableMultiStackedCertificates",
    "networkConfiguration",
    "csr",
    "org",
    "adminContact",
    "techContact",
    "thirdParty",
)
CONTACT_KEYS = (
    "firstName",
    "lastName",
    "title",
    "organizationName",
    "email",
    "phone",
    "addressLineOne",
    "addressLineTwo",
    "city",
    "region",
    "postalCode",
    "country",
)
ORG_KEYS = ("name", "addressLineOne", "addressLineTwo", "city", "region", "postalCode", "country", "phone")
CSR_SUBJECT_KEYS = ("c", "st", "l", "o", "ou")
# Values CPS fills in when the request leaves them out (documented for the spec mapping).
NETWORK_DEFAULTS: Json = {
    "mustHaveCiphers": "ak-akamai-default",
    "preferredCiphers": "ak-akamai-default",
    "ocspStapling": "not-set",
    "disallowedTlsVersions": [],
    "fipsMode": False,
    "dnsNameSettings": None,
    "clientMutualAuthentication": None,
}
NETWORK_KEYS = (
    "geography",
    "secureNetwork",
    "mustHaveCiphers",
    "preferredCiphers",
    "fipsMode",
    "sniOnly",
    "quicEnabled",
    "ocspStapling",
    "disallowedTlsVersions",
    "dnsNameSettings",
    "clientMutualAuthentication",
)
IMMUTABLE_NETWORK = ("sniOnly", "secureNetwork")
_HOSTNAME = re.compile(r"^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$")


def _filled(value: Any, keys: tuple[str, ...]) -> Any:
    if value is None:
        return None
    return {key: value.get(key) for key in keys}


def normalise(body: Json) -> Json:
    """The stored form of a request body: read-only fields dropped, every v12 key present,
    CPS defaults filled in, and the CN listed in ``csr.sans`` (once, case-insensitively)."""
    source = copy.deepcopy(body)
    out: Json = {key: source.get(key) for key in WRITABLE}
    csr = dict(source.get("csr") or {})
    sans: list[str] = []
    seen: set[str] = set()
    for name in [*(csr.get("sans") or []), csr.get("cn", "")]:
        if name and name.lower() not in seen:
            seen.add(name.lower())
            sans.append(name)
    out["csr"] = {
        "cn": csr.get("cn"),
        **{key: csr.get(key) for key in CSR_SUBJECT_KEYS},
        "preferredTrustChain": csr.get("preferredTrustChain"),
        "sans": sans,
    }
    network = dict(source.get("networkConfiguration") or {})
    for key, default in NETWORK_DEFAULTS.items():
        if network.get(key) is None:
            network[key] = copy.deepcopy(default)
    out["networkConfiguration"] = {key: network.get(key) for key in NETWORK_KEYS}
    out["org"] = _filled(source.get("org"), ORG_KEYS)
    out["adminContact"] = _filled(source.get("adminContact"), CONTACT_KEYS)
    out["techContact"] = _filled(source.get("techContact"), CONTACT_KEYS)
    if out["validationType"] != "third-party":
        # v12: the flag only means something (and is only echoed) for third-party enrollments.
        out["enableMultiStackedCertificates"] = False
    elif out["thirdParty"] is None:
        out["thirdParty"] = {"excludeSans": False}
    return out


def all_names(body: Json) -> list[str]:
    """CN first, then the other SANs, as the certificate must cover them."""
    cn: str = body["csr"]["cn"]
    return [cn, *[s for s in body["csr"]["sans"] if s.lower() != cn.lower()]]


def is_dv(body: Json) -> bool:
    return bool(body["validationType"] == "dv")


def check(body: Json, max_sans: int) -> None:
    """Semantic checks on a normalised body; raises a 400 problem naming the first violation."""
    ra, vtype, ctype = body["ra"], body["validationType"], body["certificateType"]
    if vtype == "dv":
        if ra != "lets-encrypt":
            raise bad_request(f"validationType dv needs ra lets-encrypt, not {ra!r}.")
        if ctype == "third-party":
            raise bad_request("certificateType third-party is not valid for a DV enrollment.")
    elif vtype == "third-party":
        if ra != "third-party" or ctype != "third-party":
            raise bad_request("validationType third-party needs ra and certificateType third-party.")
    else:
        raise bad_request(f"validationType {vtype!r} (OV/EV) is not supported by this sandbox.")
    names = all_names(body)
    for name in names:
        if not _HOSTNAME.match(name.lower()) or len(name) > 253:
            raise bad_request(f"{name!r} is not a valid host name for a certificate.")
    if len(names) > max_sans:
        raise bad_request(f"The certificate would have {len(names)} names; at most {max_sans} are allowed.")
    wildcards = sum(1 for name in names if name.startswith("*."))
    if wildcards > max_sans:
        raise bad_request(f"At most {max_sans} wildcard names are allowed.")
    network = body["networkConfiguration"]
    disallowed = set(network.get("disallowedTlsVersions") or [])
    if network.get("fipsMode") and {"TLSv1_2", "TLSv1_3"} <= disallowed:
        raise bad_request("fipsMode needs TLSv1_2 or TLSv1_3 to be allowed.")


@dataclass
class Edit:
    """What a PUT changes, compared with the stored body."""

    immutable: list[str] = field(default_factory=list)
    sans_added: list[str] = field(default_factory=list)
    sans_removed: list[str] = field(default_factory=list)
    certificate: list[str] = field(default_factory=list)  # non-SAN certificate-bearing fields
    network: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)
    multi_stack: bool = False

    @property
    def certificate_kind(self) -> str | None:
        """``modify-san`` / ``modify-certificate`` when a new certificate is needed."""
        if self.sans_added or self.sans_removed:
            return "modify-san"
        if self.certificate:
            return "modify-certificate"
        return None

    @property
    def anything(self) -> bool:
        return bool(
            self.immutable
            or self.certificate_kind
            or self.network
            or self.metadata
            or self.multi_stack
        )


def _lower_set(names: list[str]) -> dict[str, str]:
    return {name.lower(): name for name in names}


def classify(old: Json, new: Json) -> Edit:
    """Compare two normalised bodies field by field (CPS-API.md 3.3)."""
    edit = Edit()
    for key in ("ra", "validationType", "certificateType"):
        if old[key] != new[key]:
            edit.immutable.append(key)
    if str(old["csr"]["cn"]).lower() != str(new["csr"]["cn"]).lower():
        edit.immutable.append("csr.cn")
    for key in IMMUTABLE_NETWORK:
        if old["networkConfiguration"][key] != new["networkConfiguration"][key]:
            edit.immutable.append(f"networkConfiguration.{key}")
    before, after = _lower_set(old["csr"]["sans"]), _lower_set(new["csr"]["sans"])
    edit.sans_added = [after[k] for k in after if k not in before]
    edit.sans_removed = [before[k] for k in before if k not in after]
    for key in (*CSR_SUBJECT_KEYS, "preferredTrustChain"):
        if old["csr"][key] != new["csr"][key]:
            edit.certificate.append(f"csr.{key}")
    for key in ("signatureAlgorithm", "certificateChainType", "thirdParty"):
        if old[key] != new[key]:
            edit.certificate.append(key)
    for key in NETWORK_KEYS:
        if key not in IMMUTABLE_NETWORK and old["networkConfiguration"][key] != new["networkConfiguration"][key]:
            edit.network.append(f"networkConfiguration.{key}")
    for key in ("adminContact", "techContact", "org", "orgId", "changeManagement"):
        if old[key] != new[key]:
            edit.metadata.append(key)
    edit.multi_stack = old["enableMultiStackedCertificates"] != new["enableMultiStackedCertificates"]
    return edit


def refuse_immutable(edit: Edit) -> None:
    if edit.immutable:
        raise bad_request(
            "These fields cannot change on an existing enrollment: "
            + ", ".join(edit.immutable)
            + ". Create a new enrollment instead."
        )
