"""Terraform state as the Akamai provider writes it, built from specs, and enrollments made through the
client alone (as Terraform made them): the material of the --from-terraform tests.

``provider_attributes(spec, eid)`` is what the provider stores for an enrollment resource (every
argument present, ``""`` for an unset string, blocks as lists of one object, ``contract_id`` as
written, without ``ctr_``). ``tfstate_v4`` and ``show_json`` lay the same resources out in the two
document shapes. ``deploy`` walks enrollments through their workflows over HTTPS, acknowledging
everything and uploading certificates signed by a customer CA, and returns what was uploaded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.cps.client import CpsClient
from reconciler.cps.mapping import spec_to_wire
from reconciler.cps.models import CertificateAndTrustChain
from reconciler.sandbox.ca import CertificateAuthority
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec

AnySpec = DvEnrollmentSpec | ThirdPartyEnrollmentSpec
PROVIDER = 'provider["registry.terraform.io/akamai/akamai"]'
_CONTACT = ("first_name", "last_name", "title", "organization", "email", "phone", "address_line_one",
            "address_line_two", "city", "region", "postal_code", "country_code")
_ORG = ("name", "phone", "address_line_one", "address_line_two", "city", "region", "postal_code", "country_code")


@dataclass(frozen=True)
class Res:
    """One resource instance to put in a state document."""

    type: str
    name: str
    attributes: dict[str, Any]
    module: str = ""
    index: int | str | None = None
    mode: str = "managed"
    sensitive: tuple[tuple[str | int, ...], ...] = ()

    @property
    def address(self) -> str:
        head = f"{self.module}." if self.module else ""
        kind = f"data.{self.type}" if self.mode == "data" else self.type
        index = "" if self.index is None else (f"[{self.index}]" if isinstance(self.index, int)
                                               else f'["{self.index}"]')
        return f"{head}{kind}.{self.name}{index}"


def _block(model: Any, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{k: getattr(model, k) or "" for k in keys}]


def provider_attributes(spec: AnySpec, eid: int, **overrides: Any) -> dict[str, Any]:
    """The attributes the provider stores for ``spec``'s enrollment resource."""
    nc = spec.network_configuration
    mtls = nc.client_mutual_authentication
    attrs: dict[str, Any] = {
        "id": str(eid),
        "contract_id": (spec.contract_id or "").removeprefix("ctr_"),
        "common_name": spec.common_name,
        "sans": [s for s in spec.sans if s != spec.common_name],
        "secure_network": spec.secure_network,
        "sni_only": spec.sni_only,
        "acknowledge_pre_verification_warnings": spec.acknowledge_pre_verification_warnings,
        "allow_duplicate_common_name": spec.allow_duplicate_common_name,
        "certificate_chain_type": spec.certificate_chain_type,
        "admin_contact": _block(spec.admin_contact, _CONTACT),
        "tech_contact": _block(spec.tech_contact, _CONTACT),
        "organization": _block(spec.organization, _ORG),
        "csr": [{"country_code": spec.csr.country_code or "", "city": spec.csr.city or "",
                 "organization": spec.csr.organization or "", "organizational_unit": spec.csr.organizational_unit or "",
                 "state": spec.csr.state or "", "preferred_trust_chain": spec.csr.preferred_trust_chain or ""}],
        "network_configuration": [{
            "geography": spec.geography,
            "client_mutual_authentication": [] if mtls is None else [{
                "set_id": mtls.set_id, "send_ca_list_to_client": mtls.send_ca_list_to_client,
                "ocsp_enabled": mtls.ocsp_enabled}],
            "disallowed_tls_versions": list(nc.disallowed_tls_versions),
            "clone_dns_names": nc.clone_dns_names,
            "must_have_ciphers": nc.must_have_ciphers,
            "preferred_ciphers": nc.preferred_ciphers,
            "ocsp_stapling": nc.ocsp_stapling,
            "quic_enabled": nc.quic_enabled,
        }],
        "signature_algorithm": spec.signature_algorithm,
        "timeouts": None,
    }
    if isinstance(spec, DvEnrollmentSpec):
        attrs.update(certificate_type="san", validation_type="dv", registration_authority="lets-encrypt",
                     dns_challenges=[], http_challenges=[])
    else:
        attrs.update(auto_approve_warnings=[], change_management=spec.change_management,
                     exclude_sans=spec.exclude_sans)
    attrs.update(overrides)
    return attrs


def validation_attributes(eid: int, *, ack_post: bool = False) -> dict[str, Any]:
    return {"id": str(eid), "enrollment_id": eid, "sans": [], "acknowledge_post_verification_warnings": ack_post,
            "status": "complete", "timeouts": None}


def upload_attributes(eid: int, uploaded: dict[str, tuple[str, str]], **flags: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {"id": str(eid), "enrollment_id": eid, "acknowledge_post_verification_warnings": False,
                             "auto_approve_warnings": [], "acknowledge_change_management": False,
                             "wait_for_deployment": False, "timeouts": None}
    for key in ("rsa", "ecdsa"):
        cert, chain = uploaded.get(key, ("", ""))
        attrs[f"certificate_{key}_pem"] = cert
        attrs[f"trust_chain_{key}_pem"] = chain
    attrs.update(flags)
    return attrs


def _v4_path(path: tuple[str | int, ...]) -> list[dict[str, Any]]:
    return [{"type": "index", "value": {"value": p, "type": "number"}} if isinstance(p, int)
            else {"type": "get_attr", "value": p} for p in path]


def tfstate_v4(resources: list[Res], *, version: int = 4) -> dict[str, Any]:
    """A ``terraform.tfstate``: instances grouped per resource, as Terraform writes them."""
    grouped: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for res in resources:
        key = (res.module, res.mode, res.type, res.name)
        entry = grouped.setdefault(key, {
            **({"module": res.module} if res.module else {}), "mode": res.mode, "type": res.type,
            "name": res.name, "provider": PROVIDER, "instances": []})
        instance: dict[str, Any] = {"schema_version": 1, "attributes": res.attributes,
                                    "sensitive_attributes": [_v4_path(p) for p in res.sensitive]}
        if res.index is not None:
            instance = {"index_key": res.index, **instance}
        entry["instances"].append(instance)
    return {"version": version, "terraform_version": "1.9.8", "serial": 42, "lineage": str(uuid.uuid4()),
            "outputs": {}, "resources": list(grouped.values()), "check_results": None}


def _marks(path: tuple[str | int, ...]) -> Any:
    if not path:
        return True
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        return [{} for _ in range(head)] + [_marks(rest)]
    return {head: _marks(rest)}


def show_json(resources: list[Res]) -> dict[str, Any]:
    """``terraform show -json``: a root module and nested child modules, each resource with its address."""
    root: dict[str, Any] = {"resources": [], "child_modules": []}
    modules = {"": root}
    for res in sorted(resources, key=lambda r: r.module.count(".")):
        parts = res.module.split(".") if res.module else []
        for depth in range(2, len(parts) + 1, 2):
            address = ".".join(parts[:depth])
            if address not in modules:
                child: dict[str, Any] = {"address": address, "resources": [], "child_modules": []}
                modules[".".join(parts[:depth - 2])]["child_modules"].append(child)
                modules[address] = child
        sensitive: dict[str, Any] = {}
        for path in res.sensitive:
            sensitive.update(_marks(path))
        item = {"address": res.address, "mode": res.mode, "type": res.type, "name": res.name,
                **({"index": res.index} if res.index is not None else {}), "provider_name":
                "registry.terraform.io/akamai/akamai", "schema_version": 1, "values": res.attributes,
                "sensitive_values": sensitive}
        modules[res.module]["resources"].append(item)
    return {"format_version": "1.0", "terraform_version": "1.9.8", "values": {"root_module": root}}


@dataclass
class Deployed:
    """An enrollment made through the client: its id and the certificates uploaded for it."""

    enrollment_id: int
    uploaded: dict[str, tuple[str, str]] = field(default_factory=dict)


async def deploy(client: CpsClient, advance: Callable[[float], object], contract: str,
                 specs: list[AnySpec]) -> dict[str, Deployed]:
    """Create each spec's enrollment and walk it to production, as a Terraform apply would."""
    ca = CertificateAuthority("Customer CA")
    made: dict[str, Deployed] = {}
    for spec in specs:
        status = await client.create_enrollment(contract, spec_to_wire(spec),
                                                allow_duplicate_cn=spec.allow_duplicate_common_name)
        made[spec.name] = Deployed(status.enrollment_id)
        advance(301)  # CPS throttles creates per contract
    for _ in range(300):
        pending = False
        for item in made.values():
            for cid in (await client.get_enrollment(item.enrollment_id)).pending_change_ids:
                pending = True
                await _give(client, ca, item, cid)
        if not pending:
            return made
        advance(600)
    raise AssertionError("the sandbox enrollments never deployed")


async def _give(client: CpsClient, ca: CertificateAuthority, item: Deployed, cid: int) -> None:
    eid = item.enrollment_id
    change = await client.get_change(eid, cid)
    if change.allowed("lets-encrypt-challenges") is not None:
        await client.acknowledge_dv_challenges(eid, cid)
    elif change.allowed("third-party-certificate") is not None:
        uploads = []
        for csr in (await client.get_third_party_csrs(eid, cid)).csrs:
            key = (csr.key_algorithm or "RSA").lower()
            leaf, chain = ca.sign_csr(csr.csr)
            item.uploaded[key] = (leaf, chain)
            uploads.append(CertificateAndTrustChain(key_algorithm=key.upper(), certificate=leaf, trust_chain=chain))
        await client.upload_third_party_certificates(eid, cid, uploads)
    elif change.allowed("pre-verification-warnings-acknowledgement") is not None:
        await client.acknowledge_pre_verification_warnings(eid, cid)
    elif change.allowed("post-verification-warnings-acknowledgement") is not None:
        await client.acknowledge_post_verification_warnings(eid, cid)
    elif change.allowed("change-management") is not None:
        await client.acknowledge_change_management(eid, cid)
