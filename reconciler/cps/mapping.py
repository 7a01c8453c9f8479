"""Spec <-> CPS enrollment body: the only module that knows CPS field names.

- ``spec_to_wire(spec)``: the enrollment body for POST/PUT (``enrollment.v12``; without
  ``networkConfiguration.fipsMode``, the only field v12 added, it is a valid ``enrollment.v11``). DV follows the Let's Encrypt recipe (ra
  lets-encrypt, validationType dv, certificateType san, SHA-256, no multi-stack); third-party
  sends ra/validationType/certificateType third-party, ``thirdParty.excludeSans`` and
  ``enableMultiStackedCertificates = dual_stack``. Contacts and org carry every key (v12
  requires them), null where unset.
- ``wire_to_spec(enrollment, name=, contract_id=)``: the spec for an existing enrollment
  (import). Tolerates what CPS returns: the CN inside ``sans``, lower-cased names, null
  ``signatureAlgorithm`` for third-party, server-filled defaults, read-only fields. Tool-only
  fields (``TOOL_ONLY_FIELDS``) are not in CPS; they come from ``extra`` or the model defaults.
- ``cps_view(spec)`` / ``observed_view(enrollment, contract_id=)``: the normalised, comparable
  view of what CPS stores, keyed by spec field names, so that plan diffs name spec fields.
- ``field_class(path)``: what changing a spec field costs in CPS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from reconciler.errors import SpecError, SpecIssue
from reconciler.spec.models import DvEnrollmentSpec, EnrollmentSpec, ThirdPartyEnrollmentSpec

__all__ = ["TOOL_ONLY_FIELDS", "FieldClass", "cps_view", "field_class", "observed_view", "spec_to_wire",
           "wire_to_spec"]

AnySpec = DvEnrollmentSpec | ThirdPartyEnrollmentSpec
FieldClass = Literal["certificate", "network", "metadata", "immutable"]

TOOL_ONLY_FIELDS = frozenset({
    "name", "moved_from", "validation", "certificates", "signer", "renewal", "wait_for_deployment", "prevent_destroy",
    "deploy_not_before", "deploy_not_after",
    "acknowledge_pre_verification_warnings", "acknowledge_post_verification_warnings",
    "auto_approve_warnings", "acknowledge_change_management", "allow_duplicate_common_name",
})

# CPS fills these when a body leaves them null (enrollment.v12 descriptions).
CPS_DEFAULT_CIPHERS = "ak-akamai-default"
CPS_DEFAULT_OCSP = "not-set"

# (spec key, wire key) pairs, in wire order.
_CONTACT_KEYS = (
    ("title", "title"), ("address_line_one", "addressLineOne"), ("address_line_two", "addressLineTwo"),
    ("city", "city"), ("country_code", "country"), ("email", "email"), ("first_name", "firstName"),
    ("last_name", "lastName"), ("organization", "organizationName"), ("phone", "phone"),
    ("postal_code", "postalCode"), ("region", "region"),
)
_ORG_KEYS = (
    ("name", "name"), ("address_line_one", "addressLineOne"), ("address_line_two", "addressLineTwo"),
    ("city", "city"), ("country_code", "country"), ("phone", "phone"), ("postal_code", "postalCode"),
    ("region", "region"),
)
_CSR_KEYS = (("country_code", "c"), ("state", "st"), ("city", "l"), ("organization", "o"),
             ("organizational_unit", "ou"))

_ANY_SPEC: TypeAdapter[AnySpec] = TypeAdapter(EnrollmentSpec)  # type: ignore[arg-type]


# -- spec -> wire ------------------------------------------------------------------------------

def _object(model: BaseModel, keys: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {wire: getattr(model, attr) for attr, wire in keys}


def _network_to_wire(spec: AnySpec) -> dict[str, Any]:
    nc = spec.network_configuration
    body: dict[str, Any] = {
        "geography": spec.geography,
        "secureNetwork": spec.secure_network,
        "sniOnly": spec.sni_only,
        "quicEnabled": nc.quic_enabled,
        "disallowedTlsVersions": list(nc.disallowed_tls_versions),
        "mustHaveCiphers": nc.must_have_ciphers,
        "preferredCiphers": nc.preferred_ciphers,
        "ocspStapling": nc.ocsp_stapling,
        # DNS name settings exist only for SNI-only enrollments.
        "dnsNameSettings": {
            "cloneDnsNames": nc.clone_dns_names,
            "dnsNames": None if nc.clone_dns_names else list(nc.dns_names),
        } if spec.sni_only else None,
        "clientMutualAuthentication": None,
    }
    mtls = nc.client_mutual_authentication
    if mtls is not None:
        body["clientMutualAuthentication"] = {
            "setId": mtls.set_id,
            "authenticationOptions": {"sendCaListToClient": mtls.send_ca_list_to_client,
                                      "ocsp": {"enabled": mtls.ocsp_enabled}},
        }
    # v12 only (the one field it added over v11); always sent, since CPS fills false anyway.
    body["fipsMode"] = nc.fips_mode
    return body


def spec_to_wire(spec: AnySpec) -> dict[str, Any]:
    """The CPS enrollment body (create or update) for ``spec``."""
    dv = isinstance(spec, DvEnrollmentSpec)
    csr = {"cn": spec.common_name, "sans": list(spec.sans), **_object(spec.csr, _CSR_KEYS)}
    if spec.csr.preferred_trust_chain is not None:
        csr["preferredTrustChain"] = spec.csr.preferred_trust_chain
    return {
        "ra": "lets-encrypt" if dv else "third-party",
        "validationType": "dv" if dv else "third-party",
        "certificateType": "san" if dv else "third-party",
        "certificateChainType": spec.certificate_chain_type,
        "signatureAlgorithm": spec.signature_algorithm,
        "changeManagement": spec.change_management,
        "enableMultiStackedCertificates": False if isinstance(spec, DvEnrollmentSpec) else spec.dual_stack,
        "thirdParty": None if isinstance(spec, DvEnrollmentSpec) else {"excludeSans": spec.exclude_sans},
        "csr": csr,
        "networkConfiguration": _network_to_wire(spec),
        "org": _object(spec.organization, _ORG_KEYS),
        "adminContact": _object(spec.admin_contact, _CONTACT_KEYS),
        "techContact": _object(spec.tech_contact, _CONTACT_KEYS),
    }


# -- wire -> spec ------------------------------------------------------------------------------

def _from_object(value: Any, keys: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    out = {attr: value.get(wire) for attr, wire in keys if value.get(wire) not in (None, "")}
    country = out.get("country_code")
    if isinstance(country, str):
        out["country_code"] = country.upper()
    return out


def _network_from_wire(nc: Mapping[str, Any], sni_only: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "disallowed_tls_versions": list(nc.get("disallowedTlsVersions") or []),
        "must_have_ciphers": nc.get("mustHaveCiphers") or CPS_DEFAULT_CIPHERS,
        "preferred_ciphers": nc.get("preferredCiphers") or CPS_DEFAULT_CIPHERS,
        "ocsp_stapling": nc.get("ocspStapling") or CPS_DEFAULT_OCSP,
        "quic_enabled": bool(nc.get("quicEnabled")),
        "fips_mode": bool(nc.get("fipsMode")),
    }
    dns = nc.get("dnsNameSettings")
    if sni_only and isinstance(dns, Mapping) and dns.get("cloneDnsNames") is False:
        out["clone_dns_names"] = False
        out["dns_names"] = [str(n).lower() for n in dns.get("dnsNames") or []]
    mtls = nc.get("clientMutualAuthentication")
    if isinstance(mtls, Mapping) and mtls.get("setId"):
        options = mtls.get("authenticationOptions") or {}
        ocsp = options.get("ocsp") or {}
        out["client_mutual_authentication"] = {
            "set_id": str(mtls["setId"]),
            "send_ca_list_to_client": bool(options.get("sendCaListToClient")),
            "ocsp_enabled": bool(ocsp.get("enabled")),
        }
    return out


def _wire_data(enrollment: Mapping[str, Any]) -> dict[str, Any]:
    """Spec-shaped data (CPS-stored fields only) from an enrollment; not yet validated."""
    kind = enrollment.get("validationType")
    if kind not in ("dv", "third-party"):
        raise SpecError([SpecIssue(_where(enrollment), None, "validationType",
                                   f"{kind!r} enrollments cannot be managed (only dv and third-party)")])
    csr = enrollment.get("csr") or {}
    nc = enrollment.get("networkConfiguration") or {}
    sni_only = bool(nc.get("sniOnly"))
    cn = str(csr.get("cn") or "").lower()
    sans = [str(s).lower() for s in csr.get("sans") or []]
    data: dict[str, Any] = {
        "type": kind,
        "common_name": cn,
        "sans": list(dict.fromkeys(sans)),
        "secure_network": nc.get("secureNetwork"),
        "sni_only": sni_only,
        "geography": nc.get("geography"),
        "certificate_chain_type": enrollment.get("certificateChainType") or "default",
        "change_management": bool(enrollment.get("changeManagement")),
        "admin_contact": _from_object(enrollment.get("adminContact"), _CONTACT_KEYS),
        "tech_contact": _from_object(enrollment.get("techContact"), _CONTACT_KEYS),
        "organization": _from_object(enrollment.get("org"), _ORG_KEYS),
        "csr": _from_object(csr, _CSR_KEYS) or {},
        "network_configuration": _network_from_wire(nc, sni_only),
    }
    if kind == "dv":
        chain = csr.get("preferredTrustChain")
        # CPS may store "default" when no chain was asked for; that is the same as none.
        if chain and chain != "default":
            data["csr"]["preferred_trust_chain"] = chain
    else:
        # Often null on read for third-party; the spec then keeps its default (SHA-256).
        data["signature_algorithm"] = enrollment.get("signatureAlgorithm")
        data["exclude_sans"] = bool((enrollment.get("thirdParty") or {}).get("excludeSans"))
        data["dual_stack"] = bool(enrollment.get("enableMultiStackedCertificates"))
    return data


def _where(enrollment: Mapping[str, Any]) -> str:
    eid = enrollment.get("id")
    return f"CPS enrollment {eid}" if eid is not None else "CPS enrollment"


def _as_mapping(enrollment: Mapping[str, Any] | BaseModel) -> Mapping[str, Any]:
    if isinstance(enrollment, BaseModel):
        return enrollment.model_dump(mode="json", by_alias=True)
    return enrollment


def wire_to_spec(enrollment: Mapping[str, Any] | BaseModel, *, name: str, contract_id: str,
                 extra: Mapping[str, Any] | None = None) -> AnySpec:
    """The spec for an enrollment CPS holds. ``extra`` supplies tool-only fields (and anything
    CPS left empty, such as contacts of an ``orgId`` enrollment); CPS values win otherwise.

    Raises ``SpecError`` when the enrollment cannot be expressed as a spec.
    """
    wire = _as_mapping(enrollment)
    data: dict[str, Any] = dict(extra or {})
    for key, value in _wire_data(wire).items():
        if value is not None:  # null in CPS: keep what extra says, else the model default
            data[key] = value
    data.update(name=name, contract_id=contract_id)
    try:
        return _ANY_SPEC.validate_python(data)
    except ValidationError as exc:
        where = _where(wire)
        raise SpecError([SpecIssue(where, None, ".".join(str(p) for p in e["loc"][1:]), e["msg"])
                         for e in exc.errors(include_url=False)]) from None


# -- comparable views --------------------------------------------------------------------------

_VIEW_FIELDS = frozenset({
    "type", "contract_id", "common_name", "sans", "secure_network", "sni_only", "geography",
    "certificate_chain_type", "signature_algorithm", "change_management", "admin_contact", "tech_contact",
    "organization", "csr", "network_configuration", "exclude_sans", "dual_stack",
})


def _normalise_view(data: Mapping[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in data.items() if k in _VIEW_FIELDS}
    cn = str(view.get("common_name") or "").lower()
    view["common_name"] = cn
    view["sans"] = sorted({str(s).lower() for s in view.get("sans") or []} | ({cn} if cn else set()))
    csr = {k: v for k, v in (view.get("csr") or {}).items() if v is not None}
    if view.get("type") != "dv" or csr.get("preferred_trust_chain") == "default":
        csr.pop("preferred_trust_chain", None)
    view["csr"] = csr
    for key in ("admin_contact", "tech_contact", "organization"):
        if isinstance(view.get(key), Mapping):
            view[key] = {k: v for k, v in view[key].items() if v is not None}
    if view.get("type") == "third-party":
        view.pop("signature_algorithm", None)  # CPS reads it back as null for third-party
    nc = dict(view.get("network_configuration") or {})
    nc["disallowed_tls_versions"] = sorted(nc.get("disallowed_tls_versions") or [])
    nc["fips_mode"] = bool(nc.get("fips_mode"))
    nc.setdefault("client_mutual_authentication", None)
    if not view.get("sni_only"):
        nc.pop("clone_dns_names", None)
        nc.pop("dns_names", None)
    else:
        nc["clone_dns_names"] = nc.get("clone_dns_names", True) is not False
        if nc["clone_dns_names"]:
            nc.pop("dns_names", None)
        else:
            nc["dns_names"] = sorted({str(n).lower() for n in nc.get("dns_names") or []})
    view["network_configuration"] = nc
    return view


def cps_view(spec: AnySpec) -> dict[str, Any]:
    """What CPS would hold for ``spec``, normalised for comparison (spec field names)."""
    return _normalise_view(spec.model_dump(mode="json"))


def observed_view(enrollment: Mapping[str, Any] | BaseModel, *, contract_id: str) -> dict[str, Any]:
    """The same view built straight from an enrollment, without validating it as a spec
    (so that refresh works even for enrollments a spec could not express)."""
    data = _wire_data(_as_mapping(enrollment))
    if data["type"] == "dv":
        data["signature_algorithm"] = "SHA-256"
    data["contract_id"] = contract_id
    return _normalise_view(data)


# -- what a change costs -----------------------------------------------------------------------

_FIELD_CLASSES: dict[str, FieldClass] = {
    **dict.fromkeys(("type", "contract_id", "common_name", "sni_only", "secure_network"), "immutable"),
    **dict.fromkeys(("sans", "csr", "signature_algorithm", "certificate_chain_type", "exclude_sans",
                     "dual_stack"), "certificate"),
    **dict.fromkeys(("geography", "network_configuration"), "network"),
    **dict.fromkeys(("admin_contact", "tech_contact", "organization", "change_management"), "metadata"),
    **dict.fromkeys(TOOL_ONLY_FIELDS, "metadata"),
}


def field_class(path: str) -> FieldClass:
    """Cost of changing the spec field at ``path`` ("sans", "network_configuration.ocsp_stapling",
    "sans[3]"): ``immutable`` needs a new enrollment, ``certificate`` a new certificate, ``network``
    a redeployment of the current one, ``metadata`` nothing on the network."""
    top = path.split(".", 1)[0].split("[", 1)[0]
    try:
        return _FIELD_CLASSES[top]
    except KeyError:
        raise ValueError(f"unknown spec field path {path!r}") from None
