"""What a Terraform enrollment resource says, as spec values (the provider's arguments are the spec's).

``overlay(tf)`` returns the values the Terraform state holds for the fields CPS stores, keyed like a
spec; it is laid over the spec built from CPS (``mapping.wire_to_spec``) with ``factor.merged``, so:

- blocks the provider stores whole (``admin_contact``, ``tech_contact``, ``organization``, ``csr``,
  ``network_configuration.client_mutual_authentication``) replace CPS's: an empty string is how
  Terraform stores an unset argument, and it stays unset (a CPS value there is drift, not adopted);
- ``network_configuration`` is merged key by key, because older provider versions do not model
  every key (``dns_names`` before v11, ``fips_mode`` never): CPS's value stays for those;
- ``network_configuration.geography`` moves to the spec's top-level ``geography``; ``contract_id``
  gets its ``ctr_`` prefix (the provider accepts it either way);
- DNS names (SNI-only): v11's ``enable_for_all_sans`` decides when present, else
  ``clone_dns_names``; ``dns_names`` only from v11 and only when not cloning;
- CPS-side values the provider does not carry (third-party ``dual_stack``, always true there)
  come from CPS.

``tool_fields(tf)`` gives the tool-only settings Terraform had, merged from the enrollment and its
validation / upload resources: ``acknowledge_*``, ``auto_approve_warnings`` (the enrollment's
pre-verification IDs and the upload's post-verification IDs, in one list as the spec has them),
``allow_duplicate_common_name`` and, from an upload resource, ``wait_for_deployment``.

``spec_name(instance)`` turns an address into a spec name; ``pems(tf)`` lists the uploaded PEMs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.observe.tfcps import TfEnrollment, one
from reconciler.observe.tfstate import TfInstance

__all__ = ["overlay", "pems", "spec_name", "tool_fields"]

_CONTACT = ("first_name", "last_name", "title", "organization", "email", "phone", "address_line_one",
            "address_line_two", "city", "region", "postal_code", "country_code")
_ORG = ("name", "phone", "address_line_one", "address_line_two", "city", "region", "postal_code", "country_code")
_CSR = ("country_code", "state", "city", "organization", "organizational_unit")
_NETWORK_TEXT = ("must_have_ciphers", "preferred_ciphers", "ocsp_stapling")
KEY_TYPES = ("rsa", "ecdsa")


def _text(value: Any) -> str | None:
    """A string argument; Terraform stores an unset one as ``""``."""
    return value if isinstance(value, str) and value != "" else None


def _block(value: Any, keys: tuple[str, ...]) -> dict[str, Any] | None:
    block = one(value)
    if block is None:
        return None
    out = {k: text for k in keys if (text := _text(block.get(k))) is not None}
    if "country_code" in out:
        out["country_code"] = out["country_code"].upper()
    return out


def contract(value: Any) -> str | None:
    """``ctr_``-prefixed, as the rest of the tool writes contract ids."""
    text = _text(value)
    if text is None:
        return None
    return text if text.startswith("ctr_") else f"ctr_{text}"


def _names(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _network(attrs: Mapping[str, Any], sni_only: bool) -> tuple[dict[str, Any], str | None]:
    """(network_configuration values Terraform has, geography)."""
    block = one(attrs.get("network_configuration"))
    if block is None:
        return {}, None
    out: dict[str, Any] = {"disallowed_tls_versions": sorted(_names(block.get("disallowed_tls_versions")))}
    for key in _NETWORK_TEXT:
        if _text(block.get(key)) is not None:
            out[key] = block[key]
    if isinstance(block.get("quic_enabled"), bool):
        out["quic_enabled"] = block["quic_enabled"]
    mtls = one(block.get("client_mutual_authentication"))
    out["client_mutual_authentication"] = None
    if mtls is not None and _text(mtls.get("set_id")) is not None:
        out["client_mutual_authentication"] = {
            "set_id": mtls["set_id"], "send_ca_list_to_client": bool(mtls.get("send_ca_list_to_client")),
            "ocsp_enabled": bool(mtls.get("ocsp_enabled"))}
    if sni_only:
        clone = block.get("enable_for_all_sans", block.get("clone_dns_names"))
        if isinstance(clone, bool):
            out["clone_dns_names"] = clone
            if clone:
                out["dns_names"] = []
            elif "enable_for_all_sans" in block:  # v11 keeps the names it asked for
                out["dns_names"] = sorted(n.lower() for n in _names(block.get("dns_names")))
    return out, _text(block.get("geography"))


def overlay(tf: TfEnrollment) -> dict[str, Any]:
    """The Terraform state's values for the fields CPS stores, spec-shaped (see the module docstring)."""
    attrs = tf.resource.attributes
    out: dict[str, Any] = {}
    for key in ("common_name", "secure_network", "certificate_chain_type"):
        if _text(attrs.get(key)) is not None:
            out[key] = attrs[key]
    if _text(attrs.get("contract_id")) is not None:
        out["contract_id"] = contract(attrs["contract_id"])
    if isinstance(attrs.get("sans"), list):
        out["sans"] = sorted(n.lower() for n in _names(attrs["sans"]))
    if isinstance(attrs.get("sni_only"), bool):
        out["sni_only"] = attrs["sni_only"]
    for key, keys in (("admin_contact", _CONTACT), ("tech_contact", _CONTACT), ("organization", _ORG)):
        block = _block(attrs.get(key), keys)
        if block is not None:
            out[key] = block
    csr = _block(attrs.get("csr"), _CSR)
    if csr is not None:
        chain = _text((one(attrs.get("csr")) or {}).get("preferred_trust_chain"))
        if tf.kind == "dv" and chain is not None and chain != "default":
            csr["preferred_trust_chain"] = chain
        out["csr"] = csr
    network, geography = _network(attrs, bool(attrs.get("sni_only", out.get("sni_only"))))
    if network:
        out["network_configuration"] = network
    if geography is not None:
        out["geography"] = geography
    if _text(attrs.get("signature_algorithm")) is not None:
        out["signature_algorithm"] = attrs["signature_algorithm"]
    if tf.kind == "third-party":
        for key in ("change_management", "exclude_sans"):
            if isinstance(attrs.get(key), bool):
                out[key] = attrs[key]
    return out


def _flag(*resources: TfInstance | None, key: str) -> bool | None:
    values = [r.attributes.get(key) for r in resources if r is not None and isinstance(r.attributes.get(key), bool)]
    return any(values) if values else None


def tool_fields(tf: TfEnrollment) -> dict[str, Any]:
    """The tool-only settings the Terraform resources carried (absent: the provider's default false)."""
    enrollment, later = tf.resource, tf.validation or tf.upload
    out: dict[str, Any] = {
        "acknowledge_pre_verification_warnings": bool(_flag(enrollment, key="acknowledge_pre_verification_warnings")),
        "allow_duplicate_common_name": bool(_flag(enrollment, key="allow_duplicate_common_name")),
        "acknowledge_post_verification_warnings": bool(_flag(later, key="acknowledge_post_verification_warnings")),
    }
    warnings = _names(enrollment.attributes.get("auto_approve_warnings"))
    if tf.upload is not None:
        warnings += _names(tf.upload.attributes.get("auto_approve_warnings"))
        out["acknowledge_change_management"] = bool(_flag(tf.upload, key="acknowledge_change_management"))
        out["wait_for_deployment"] = bool(_flag(tf.upload, key="wait_for_deployment"))
    if tf.kind == "third-party":
        out["auto_approve_warnings"] = sorted(set(warnings))
    return out


def spec_name(instance: TfInstance) -> str:
    """Module names, resource name and index key, joined with ``-`` and made a valid spec name:
    ``module.certs.akamai_cps_dv_enrollment.this["www"]`` -> ``certs-this-www``."""
    parts = [p for p in instance.module.split(".") if p and p != "module"]
    parts.append(instance.name)
    if instance.index is not None:
        parts.append(str(instance.index))
    base = re.sub(r"[^a-z0-9._-]+", "-", "-".join(parts).lower())
    base = re.sub(r"-{2,}", "-", base).strip("-._")[:120].strip("-._")
    return base or "enrollment"


def pems(tf: TfEnrollment) -> dict[str, tuple[str, str | None]]:
    """Key type -> (certificate PEM, trust chain PEM or None) the upload resource sent."""
    if tf.upload is None:
        return {}
    attrs = tf.upload.attributes
    found: dict[str, tuple[str, str | None]] = {}
    for key in KEY_TYPES:
        cert = _text(attrs.get(f"certificate_{key}_pem"))
        if cert is not None and cert.strip():
            chain = _text(attrs.get(f"trust_chain_{key}_pem"))
            found[key] = (cert.strip() + "\n", chain.strip() + "\n" if chain and chain.strip() else None)
    return found
