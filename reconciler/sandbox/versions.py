"""Every media-type version the official definitions declare, for answers and for request bodies.

The engine works in the newest shapes (enrollment.v12, deployment.v8, change-management-info.v6,
...). An older version is made from that in two steps: a *structural* step for what a version
names or nests differently (below), then ``fit``, which projects the document onto the official
schema of that version: keys the version does not define are dropped, an optional key whose value
the version cannot hold (``null`` where it is not nullable) is left out, a required nullable key
that is missing is sent as ``null``. A request body of an older version is lifted to the newest
shape by the inverse structural step (``upgrade``); the engine fills the rest with CPS defaults.

| versions | structure (besides what ``fit`` drops) |
|---|---|
| enrollment(s) v1-v6 | `networkConfiguration.sni` `{cloneDnsNames, dnsNames}` (null = not SNI-only) instead of `sniOnly` + `dnsNameSettings` |
| enrollment(s) v1-v2 | `networkConfiguration.networkType` (`standard-worldwide`, `worldwide`, `worldwide-russia`) instead of `geography` |
| enrollment(s) v1-v9 | `pendingChanges` is a list of change links, not `{location, changeType}` |
| enrollment(s) v7-v8 | `disallowedTlsVersions` spells TLS 1.0 `TLSv1_0` and cannot name TLS 1.3 |
| deployment(s) v1-v5 | one `certificate` / `trustChain` / `signatureAlgorithm` per network instead of `primaryCertificate` + `multiStackedCertificates`; v1-v2 `networkType` and `sni` |
| change-management-info v1-v4 | one `pendingCertificate` instead of `pendingCertificates`; v1-v2 `networkType` and `sni` |
| csr v1 | `{"csr": PEM}`: the RSA CSR only |
| dv-challenges v1 | `{"challenges": [...]}`: one flat item per domain, its http-01 challenge |
| certificate-and-trust-chain v1 (request) | `{"certificate", "trustChain"}`: one certificate, for the change's first CSR |

Declared versions the definitions publish no schema for (enrollment(s) v5, v6, v8; change v3-v5;
change-history v1, v2, v4; deployments v4, v5) are served in the shape of the nearest version
that has one (``SCHEMA_OF``) [sandbox].
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from reconciler.sandbox.schemas import official_schemas

Json = dict[str, Any]

# Declared version without a published schema -> the version whose schema (and shape) it gets.
SCHEMA_OF: dict[str, str] = {
    "enrollment.v5": "enrollment.v4", "enrollment.v6": "enrollment.v4", "enrollment.v8": "enrollment.v7",
    "enrollments.v5": "enrollments.v4", "enrollments.v6": "enrollments.v4", "enrollments.v8": "enrollments.v7",
    "change.v3": "change.v2", "change.v4": "change.v2", "change.v5": "change.v2",
    "change-history.v1": "change-history.v3", "change-history.v2": "change-history.v3",
    "change-history.v4": "change-history.v3",
    "deployments.v4": "deployments.v3", "deployments.v5": "deployments.v3",
}

# enrollment networkType of v1-v2 <-> geography of v3 on.
NETWORK_TYPES = {"core": "standard-worldwide", "china+core": "worldwide", "russia+core": "worldwide-russia"}
GEOGRAPHIES = {value: key for key, value in NETWORK_TYPES.items()}
V7_TLS = {"TLSv1": "TLSv1_0"}


def schema_version(entity_version: str) -> str:
    """The version whose official schema describes ``entity_version``."""
    return SCHEMA_OF.get(entity_version, entity_version)


def number(entity_version: str) -> int:
    return int(entity_version.rsplit(".v", 1)[1])


def entity(entity_version: str) -> str:
    return entity_version.rsplit(".v", 1)[0]


# -- projection onto a schema ----------------------------------------------------------------------

def _nullable(schema: Json) -> bool:
    return bool(schema.get("nullable"))


def fit(schema: Json, value: Any) -> Any:
    """``value`` reduced to what ``schema`` (OpenAPI 3.0, from ``official_schemas``) defines."""
    if value is None:
        return None
    if isinstance(value, dict) and "properties" in schema:
        required = set(schema.get("required") or ())
        out: Json = {}
        for key, sub in schema["properties"].items():
            if key not in value:
                if key in required and _nullable(sub):
                    out[key] = None
                continue
            item = fit(sub, value[key])
            if item is None and not _nullable(sub) and key not in required:
                continue
            out[key] = item
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [fit(schema["items"], item) for item in value]
    return value


# -- structural steps, newest -> older --------------------------------------------------------------

def _sni_network(network: Json | None, *, sni_from_dns_names: bool = False) -> Json | None:
    """A v1-v6 style ``networkConfiguration`` (``sni``, and ``networkType`` for v1-v2 via ``fit``)."""
    if network is None:
        return None
    out = dict(network)
    if out.get("sniOnly"):
        settings = out.get("dnsNameSettings") or {}
        if sni_from_dns_names:  # deployments carry the served names, already expanded
            out["sni"] = {"cloneDnsNames": False, "dnsNames": list(out.get("dnsNames") or [])}
        else:
            clone = settings.get("cloneDnsNames")
            out["sni"] = {"cloneDnsNames": True if clone is None else bool(clone),
                          "dnsNames": list(settings.get("dnsNames") or [])}
    else:
        out["sni"] = None
    out["networkType"] = NETWORK_TYPES.get(str(out.get("geography")), "standard-worldwide")
    return out


def _enrollment(body: Json, n: int) -> Json:
    out = dict(body)
    network = out.get("networkConfiguration")
    if n in (7, 8) and isinstance(network, dict):
        # v7 spells TLS 1.0 TLSv1_0 and has no TLS 1.3 in its enum.
        versions = [V7_TLS.get(v, v) for v in network.get("disallowedTlsVersions") or [] if v != "TLSv1_3"]
        out["networkConfiguration"] = {**network, "disallowedTlsVersions": versions}
    if n <= 6:
        out["networkConfiguration"] = _sni_network(out.get("networkConfiguration"))
    if n <= 9:
        out["pendingChanges"] = [p["location"] if isinstance(p, dict) else p for p in out.get("pendingChanges") or []]
    return out


def _enrollments(body: Json, n: int) -> Json:
    return {**body, "enrollments": [_enrollment(item, n) for item in body.get("enrollments") or []]}


def _deployment(body: Json, n: int) -> Json:
    if n >= 6:
        return body
    primary = body.get("primaryCertificate") or {}
    network = body.get("networkConfiguration")
    if n <= 2:
        network = _sni_network(network, sni_from_dns_names=True)
    elif network is not None:
        network = {**network, "sni": {"cloneDnsNames": False, "dnsNames": list(network.get("dnsNames") or [])}
                   if network.get("sniOnly") else None}
    return {"certificate": primary.get("certificate"), "trustChain": primary.get("trustChain"),
            "signatureAlgorithm": primary.get("signatureAlgorithm"), "networkConfiguration": network}


def _deployments(body: Json, n: int) -> Json:
    return {network: _deployment(body[network], n) if isinstance(body.get(network), dict) else body.get(network)
            for network in ("production", "staging")}


def _cm_info(body: Json, n: int) -> Json:
    if n >= 5:
        return body
    pending = dict(body.get("pendingState") or {})
    certificates = pending.pop("pendingCertificates", None) or []
    pending["pendingCertificate"] = certificates[0] if certificates else None
    if n <= 2:
        pending["pendingNetworkConfiguration"] = _sni_network(pending.get("pendingNetworkConfiguration"))
    return {**body, "pendingState": pending}


def _csr(body: Json, n: int) -> Json:
    if n >= 2:
        return body
    csrs = body.get("csrs") or []
    rsa = next((c for c in csrs if c.get("keyAlgorithm") == "RSA"), csrs[0] if csrs else {})
    return {"csr": rsa.get("csr")}


def _dv_challenges(body: Json, n: int) -> Json:
    if n >= 2:
        return body
    flat = []
    for domain in body.get("dv") or []:
        http = next((c for c in domain.get("challenges") or [] if c.get("type") == "http-01"), None)
        if http is None:
            continue  # v1 knows http-01 only (a wildcard has none)
        flat.append({
            "domain": domain.get("domain"), "token": http.get("token"), "responseBody": http.get("responseBody"),
            "fullPath": http.get("fullPath"), "redirectFullPath": http.get("redirectFullPath"),
            "status": http.get("status"), "error": domain.get("error"), "expires": domain.get("expires"),
            "requestTimestamp": domain.get("requestTimestamp"),
            "validatedTimestamp": domain.get("validatedTimestamp"),
        })
    return {"challenges": flat}


_STRUCTURE: dict[str, Callable[[Json, int], Json]] = {
    "enrollment": _enrollment, "enrollments": _enrollments, "deployment": _deployment,
    "deployments": _deployments, "change-management-info": _cm_info, "csr": _csr, "dv-challenges": _dv_challenges,
}


def reshape(body: Json, entity_version: str) -> Json:
    """The engine's newest-shape ``body`` as ``entity_version`` (a new document; ``body`` is kept)."""
    shaped_as = schema_version(entity_version)
    step = _STRUCTURE.get(entity(shaped_as))
    document = step(copy.deepcopy(body), number(shaped_as)) if step else copy.deepcopy(body)
    fitted: Json = fit(official_schemas()[shaped_as], document)
    return fitted


# -- request bodies, older -> newest ----------------------------------------------------------------

# What a v1-v6 request leaves out and CPS assumes for a new enrollment.
_NETWORK_DEFAULTS: Json = {"secureNetwork": "standard-tls", "quicEnabled": False, "sniOnly": False}


def _upgrade_network(network: Json) -> Json:
    out = dict(network)
    if "sni" in out:
        sni = out.pop("sni")
        out["sniOnly"] = sni is not None
        out["dnsNameSettings"] = None if sni is None else {"cloneDnsNames": bool(sni.get("cloneDnsNames")),
                                                           "dnsNames": sni.get("dnsNames")}
    if isinstance(out.get("disallowedTlsVersions"), list):
        out["disallowedTlsVersions"] = ["TLSv1" if v == "TLSv1_0" else v for v in out["disallowedTlsVersions"]]
    network_type = out.pop("networkType", None)
    if "geography" not in out and network_type is not None:
        out["geography"] = GEOGRAPHIES.get(str(network_type), "core")
    return out


# Old names -> the newest names they stand for (what ``_upgrade_network`` turns them into).
_RENAMED = {"sni": ("sniOnly", "dnsNameSettings"), "networkType": ("geography",)}


def _keep_unsaid(schema: Json, body: Any, stored: Any) -> Any:
    """``body`` plus, at every level, the ``stored`` keys its version's ``schema`` cannot express."""
    props = schema.get("properties")
    if not isinstance(body, dict) or not isinstance(stored, dict) or not props:
        return body
    said = set(props) | {new for old in props for new in _RENAMED.get(old, ())}
    out = dict(body)
    for key, value in stored.items():
        if key not in said:
            out.setdefault(key, copy.deepcopy(value))
        elif key in props and key in out:
            out[key] = _keep_unsaid(props[key], out[key], value)
    return out


def upgrade_enrollment(body: Json, version: str, stored: Json | None = None) -> Json:
    """An enrollment request of ``version`` as an ``enrollment.v12`` request.

    What the older version cannot say is kept from ``stored`` (the enrollment a PUT replaces: an
    old client must not reset fields it does not know, down to a contact's address) or, for a
    create, left to CPS's defaults.
    """
    out = copy.deepcopy(body)
    if stored is not None:
        out = _keep_unsaid(official_schemas()[schema_version(version)], out, stored)
    network = _upgrade_network(out.get("networkConfiguration") or {})
    for key, value in {"geography": "core", **_NETWORK_DEFAULTS}.items():
        network.setdefault(key, value)
    out["networkConfiguration"] = network
    out.setdefault("enableMultiStackedCertificates", False)
    return out


def upgrade_certificates(body: Json, key_algorithm: str) -> Json:
    """A ``certificate-and-trust-chain.v1`` upload as v2, for the change's ``key_algorithm`` CSR."""
    if "certificatesAndTrustChains" in body:
        return body
    return {"certificatesAndTrustChains": [{"keyAlgorithm": key_algorithm, "certificate": body.get("certificate"),
                                            "trustChain": body.get("trustChain")}]}
