"""Response documents built from the engine's stored records (newest media versions' shapes).

Stored timestamps are full-precision ISO strings; on the wire they are ``YYYY-MM-DDTHH:MM:SSZ``.
Every document here validates against its official schema (the one deliberate exception is the
enrollment ``id``: declared a string, sent as an integer, as CPS does).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reconciler.sandbox import dv
from reconciler.sandbox.enrollment_rules import all_names
from reconciler.sandbox.store import Json, change_link, enrollment_link, pending_change, wire

TRUNCATED_HISTORY = 6
# Change types the enrollment's pendingChanges enum knows; a network-only change shows null.
PENDING_CHANGE_TYPES = ("new-certificate", "modify-certificate", "modify-san", "renewal")
HISTORY_ACTIONS = {
    "new-certificate": "new-certificate",
    "modify-certificate": "new-certificate",
    "modify-san": "modify-san",
    "renewal": "renew",
    "update-network-configuration": "update-network-configuration",
}
ACTION_DESCRIPTIONS = {
    "new-certificate": "Create New Certificate",
    "modify-san": "Modify SAN List",
    "renew": "Renew Certificate",
    "update-network-configuration": "Update Network Configuration",
}
HISTORY_STATUS = {"completed": "completed", "cancelled": "cancelled"}
# certificate-history.v2 still speaks the old geography names.
HISTORY_GEOGRAPHY = {"core": "standard-worldwide", "china+core": "worldwide", "russia+core": "worldwide-russia"}


def dns_names(body: Json) -> list[str]:
    """Names the edge serves for an SNI-only enrollment (``dnsNameSettings``; clone = all SANs)."""
    network = body["networkConfiguration"]
    if not network["sniOnly"]:
        return []
    settings = network.get("dnsNameSettings")
    if settings is None or settings.get("cloneDnsNames"):
        return all_names(body)
    return list(settings.get("dnsNames") or [])


def network_view(body: Json) -> Json:
    """``networkConfiguration`` of a ``deployment.v8``."""
    network = body["networkConfiguration"]
    return {
        "geography": network["geography"],
        "secureNetwork": network["secureNetwork"],
        "mustHaveCiphers": network["mustHaveCiphers"],
        "preferredCiphers": network["preferredCiphers"],
        "disallowedTlsVersions": list(network["disallowedTlsVersions"] or []),
        "dnsNames": dns_names(body),
        "ocspStapling": network["ocspStapling"],
        "quicEnabled": network["quicEnabled"],
        "sniOnly": network["sniOnly"],
        "fipsMode": bool(network["fipsMode"]),
    }


def certificate_view(cert: Json) -> Json:
    return {
        "certificate": cert["certificate"],
        "trustChain": cert["trustChain"] or None,
        "expiry": wire(cert["expiry"]),
        "keyAlgorithm": cert["keyAlgorithm"],
        "signatureAlgorithm": cert["signatureAlgorithm"],
    }


def _deployment(body: Json, certificates: list[Json]) -> Json:
    views = [certificate_view(c) for c in certificates]
    return {
        "ocspStapled": body["networkConfiguration"]["ocspStapling"] == "on",
        "ocspUris": None,
        "networkConfiguration": network_view(body),
        "primaryCertificate": views[0] if views else None,
        "multiStackedCertificates": views[1:],
    }


def deployment_view(deployment: Json) -> Json:
    """``deployment.v8`` of a stored deployment."""
    return _deployment(deployment["body"], deployment["certificates"])


def deployments_view(record: Json) -> Json:
    """``deployments.v8``: both networks, ``primaryCertificate`` null where nothing is deployed."""
    out = {}
    for network in ("production", "staging"):
        deployment = record["deployments"][network]
        out[network] = deployment_view(deployment) if deployment else _deployment(record["body"], [])
    return out


def pending_deployment(change: Json) -> Json:
    """The staged, not yet production deployment: the ``deployment`` shape of change management."""
    return _deployment(change["body"], change["certificates"])


def cm_info(change: Json) -> Json:
    """``change-management-info.v6``; the hash covers everything being acknowledged."""
    body = change["body"]
    network = body["networkConfiguration"]
    ocsp_on = network["ocspStapling"] == "on"
    pending_state = {
        "pendingCertificates": [
            {
                "certificateType": body["certificateType"],
                "fullCertificate": cert["certificate"],
                "keyAlgorithm": cert["keyAlgorithm"],
                "ocspStapled": ocsp_on,
                "ocspUris": None,
                "signatureAlgorithm": cert["signatureAlgorithm"],
            }
            for cert in change["certificates"]
        ],
        "pendingNetworkConfiguration": {
            "dnsNameSettings": network["dnsNameSettings"],
            "mustHaveCiphers": network["mustHaveCiphers"],
            "networkType": None,
            "ocspStapling": network["ocspStapling"],
            "preferredCiphers": network["preferredCiphers"],
            "fipsMode": network["fipsMode"],
            "quicEnabled": network["quicEnabled"],
            "sniOnly": network["sniOnly"],
            "disallowedTlsVersions": list(network["disallowedTlsVersions"] or []),
        },
    }
    result = {"errors": None, "warnings": list(change["cm_warnings"])}
    digest = hashlib.sha1(json.dumps([pending_state, result], sort_keys=True).encode(), usedforsecurity=False)
    return {
        "acknowledgementDeadline": wire(change["ack_deadline"]),
        "validationResultHash": digest.hexdigest(),
        "pendingState": pending_state,
        "validationResult": result,
    }


_ENROLLMENT_PARTS = ("networkConfiguration", "csr", "org", "adminContact", "techContact", "thirdParty")


def _copied(body: Json, keys: tuple[str, ...]) -> Json:
    """Deep copies of the stored parts (a view may be changed, e.g. by a media-version
    conversion; the store must not be). One JSON round trip: a list of a thousand enrollments
    pays it a thousand times, not six thousand."""
    copied: Json = json.loads(json.dumps({key: body[key] for key in keys}))
    return copied


def enrollment_view(record: Json, max_sans: int, renewal_start: Any) -> Json:
    """``enrollment.v12`` with the server-filled read-only fields."""
    body = record["body"]
    enrollment_id = int(record["id"])
    pending = pending_change(record)
    pending_list = []
    if pending is not None:
        kind = pending["type"]
        pending_list.append(
            {
                "location": change_link(enrollment_id, int(pending["id"])),
                "changeType": kind if kind in PENDING_CHANGE_TYPES else None,
            }
        )
    slot = [record["slot"]]
    deployments = record["deployments"]
    auto_renewal = None
    if renewal_start is not None and not (pending is not None and pending["type"] == "renewal"):
        auto_renewal = wire(renewal_start)
    return {
        "id": enrollment_id,
        "location": enrollment_link(enrollment_id),
        "ra": body["ra"],
        "validationType": body["validationType"],
        "certificateType": body["certificateType"],
        "certificateChainType": body["certificateChainType"],
        "signatureAlgorithm": body["signatureAlgorithm"],
        "changeManagement": body["changeManagement"],
        "orgId": body["orgId"],
        "enableMultiStackedCertificates": body["enableMultiStackedCertificates"],
        "autoRenewalStartTime": auto_renewal,
        "maxAllowedSanNames": max_sans,
        "maxAllowedWildcardSanNames": max_sans,
        "assignedSlots": slot,
        "productionSlots": slot if deployments["production"] else [],
        "stagingSlots": slot if deployments["staging"] else [],
        **_copied(body, _ENROLLMENT_PARTS),
        "pendingChanges": pending_list,
    }


def _history_certificate(cert: Json) -> Json:
    out = {"certificate": cert.get("certificate"), "trustChain": cert.get("trustChain") or None}
    if cert.get("csr"):
        out["csr"] = cert["csr"]
    out["keyAlgorithm"] = cert["keyAlgorithm"]
    return out


def change_history(record: Json, include_all: bool) -> Json:
    """``change-history.v5``, newest first (six newest unless ``include_all``)."""
    items = []
    for change in sorted(record["changes"].values(), key=lambda c: int(c["id"]), reverse=True):
        certs = change["certificates"] or [
            {"keyAlgorithm": c["keyAlgorithm"], "csr": c["csr"]} for c in change["csrs"]
        ]
        views = [_history_certificate(c) for c in certs]
        action = HISTORY_ACTIONS[change["type"]]
        items.append(
            {
                "action": action,
                "actionDescription": ACTION_DESCRIPTIONS[action],
                "status": HISTORY_STATUS.get(change["state"], "incomplete"),
                "createdBy": "cps-sandbox",
                "createdOn": wire(change["created"]),
                "lastUpdated": wire(change["updated"]),
                "ra": change["body"]["ra"],
                "businessCaseId": None,
                "primaryCertificate": views[0] if views else None,
                "multiStackedCertificates": views[1:],
                "primaryCertificateOrderDetails": None,
            }
        )
    return {"changes": items if include_all else items[:TRUNCATED_HISTORY]}


def certificate_history(record: Json, include_all: bool) -> Json:
    """``certificate-history.v2``: every certificate set that reached a network, newest first."""
    production, staging = record["deployments"]["production"], record["deployments"]["staging"]
    items = []
    for set_id, cert_set in sorted(record["certificate_sets"].items(), key=lambda kv: int(kv[0]), reverse=True):
        views = [
            {
                "certificate": c["certificate"],
                "trustChain": c["trustChain"] or None,
                "expiry": wire(c["expiry"]),
                "keyAlgorithm": c["keyAlgorithm"],
            }
            for c in cert_set["certificates"]
        ]
        items.append(
            {
                "type": cert_set["certificateType"],
                "ra": cert_set["ra"],
                "slots": [record["slot"]],
                "deploymentStatus": "active" if production and str(production["cert_set"]) == set_id else "inactive",
                "stagingStatus": "active" if staging and str(staging["cert_set"]) == set_id else "inactive",
                "geography": HISTORY_GEOGRAPHY.get(cert_set["geography"], "standard-worldwide"),
                "primaryCertificate": views[0] if views else None,
                "multiStackedCertificates": views[1:],
            }
        )
    return {"certificates": items if include_all else items[:TRUNCATED_HISTORY]}


def dv_history(record: Json) -> Json:
    """``dv-history.v1``: per domain, every validation record of every DV change, newest first."""
    by_domain: dict[str, list[Json]] = {}
    for change in sorted(record["changes"].values(), key=lambda c: int(c["id"]), reverse=True):
        for domain in change["domains"]:
            by_domain.setdefault(domain["domain"], []).append(dv.history_entry(domain))
    return {"results": [{"domain": name, "domainHistory": entries} for name, entries in by_domain.items()]}
