"""spec <-> wire mapping: bodies valid against the official schemas, lossless round trips, views
that do not flap on what CPS does to a body, and field classes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator
from pydantic import TypeAdapter

from reconciler.cps.mapping import (
    TOOL_ONLY_FIELDS,
    cps_view,
    field_class,
    observed_view,
    spec_to_wire,
    wire_to_spec,
)
from reconciler.errors import SpecError
from reconciler.spec.models import DvEnrollmentSpec, EnrollmentSpec, ThirdPartyEnrollmentSpec
from reconciler.spec.validate import check_spec
from reconciler.spec.yamlsource import load_documents
from tests.reference import CPS_V2

REFERENCE = CPS_V2
ANY_SPEC: TypeAdapter[Any] = TypeAdapter(EnrollmentSpec)


def _v12() -> dict[str, Any]:
    # Read with the spec loader's YAML 1.2 booleans, so an unquoted on/off would stay a string.
    text = (REFERENCE / "latest-parts/schemas/enrollment.v12.yaml").read_text()
    [(schema, _)] = load_documents(text, "enrollment.v12.yaml")
    ocsp = schema["properties"]["networkConfiguration"]["properties"]["ocspStapling"]
    assert ocsp["enum"] == ["on", "off", "not-set"] and ocsp["nullable"] is True
    assert "$ref" not in json.dumps(schema)  # self-contained: nothing to resolve
    return dict(schema)


def _v11() -> dict[str, Any]:
    bundled = json.loads((REFERENCE / "openapi.json").read_text())
    content = bundled["paths"]["/enrollments"]["post"]["requestBody"]["content"]
    schema: dict[str, Any] = content["application/vnd.akamai.cps.enrollment.v11+json"]["schema"]
    return schema


pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason="official CPS definitions not present")

V12 = OAS30Validator(_v12()) if REFERENCE.is_dir() else None
V11 = OAS30Validator(_v11()) if REFERENCE.is_dir() else None


def _schema_errors(validator: Any, body: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]


# -- strategies --------------------------------------------------------------------------------

label = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
zone = st.sampled_from(["example.com", "example.org", "shop.example.net", "xn--bcher-kva.de"])
hostname = st.builds(lambda a, z: f"{a}.{z}", label, zone)
text = st.text(st.characters(min_codepoint=32, max_codepoint=0x24F, blacklist_categories=("Cs",)),
               min_size=1, max_size=20).filter(lambda s: s.strip() == s and s)
country = st.sampled_from(["US", "NL", "DE", "JP", "NO"])
maybe = st.none() | text


@st.composite
def contacts(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "first_name": draw(text), "last_name": draw(text), "phone": draw(text),
        "email": draw(st.builds(lambda u, z: f"{u}@{z}", label, zone)),
        "title": draw(maybe), "organization": draw(maybe), "address_line_one": draw(maybe),
        "address_line_two": draw(maybe), "city": draw(maybe), "region": draw(maybe),
        "postal_code": draw(maybe), "country_code": draw(st.none() | country),
    }


@st.composite
def specs(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["dv", "third-party"]))
    method = draw(st.sampled_from(["dns-01", "http-01"]))
    wildcard_ok = kind == "third-party" or method == "dns-01"
    names = draw(st.lists(hostname, min_size=1, max_size=8, unique=True))
    if wildcard_ok and draw(st.booleans()):
        names[0] = "*." + names[0].split(".", 1)[1]
        names = list(dict.fromkeys(names))
    cn = names[0]
    sans = draw(st.permutations(names[1:] + ([cn] if draw(st.booleans()) else [])))
    sni_only = draw(st.booleans())
    clone = True if not sni_only else draw(st.booleans())
    all_names = list(dict.fromkeys([*sans, cn]))
    disallowed = draw(st.lists(st.sampled_from(["TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3"]), unique=True,
                               max_size=3))
    fips = draw(st.booleans())
    if fips and {"TLSv1_2", "TLSv1_3"} <= set(disallowed):
        disallowed.remove("TLSv1_3")
    network: dict[str, Any] = {
        "disallowed_tls_versions": disallowed, "clone_dns_names": clone,
        "dns_names": [] if clone else draw(st.lists(st.sampled_from(all_names), min_size=1, unique=True)),
        "must_have_ciphers": draw(st.sampled_from(["ak-akamai-default", "ak-akamai-2020q1", "ak-akamai-2023q1"])),
        "preferred_ciphers": draw(st.sampled_from(["ak-akamai-default", "ak-akamai-2020q1"])),
        "ocsp_stapling": draw(st.sampled_from(["on", "off", "not-set"])),
        "quic_enabled": draw(st.booleans()), "fips_mode": fips,
        "client_mutual_authentication": draw(st.none() | st.fixed_dictionaries({
            "set_id": st.from_regex(r"[0-9]{1,6}", fullmatch=True), "send_ca_list_to_client": st.booleans(),
            "ocsp_enabled": st.booleans()})),
    }
    spec: dict[str, Any] = {
        "name": draw(st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)), "type": kind,
        "contract_id": draw(st.sampled_from(["ctr_1-ABC", "ctr_C-0N7RAC7"])),
        "common_name": cn, "sans": sans, "sni_only": sni_only,
        "secure_network": draw(st.sampled_from(["enhanced-tls", "standard-tls"])),
        "geography": draw(st.sampled_from(["core", "china+core", "russia+core"])),
        "certificate_chain_type": draw(st.sampled_from(["default", "symantec1kroot"])),
        "admin_contact": draw(contacts()), "tech_contact": draw(contacts()),
        "organization": {"name": draw(text), "phone": draw(text), "address_line_one": draw(text),
                         "address_line_two": draw(maybe), "city": draw(text), "region": draw(text),
                         "postal_code": draw(text), "country_code": draw(country)},
        "csr": {"country_code": draw(st.none() | country), "state": draw(maybe), "city": draw(maybe),
                "organization": draw(maybe), "organizational_unit": draw(maybe)},
        "network_configuration": network,
        "change_management": draw(st.booleans()),
        "acknowledge_pre_verification_warnings": draw(st.booleans()),
        "acknowledge_post_verification_warnings": draw(st.booleans()),
        "allow_duplicate_common_name": draw(st.booleans()),
        "prevent_destroy": draw(st.booleans()), "wait_for_deployment": draw(st.booleans()),
        "auto_approve_warnings": draw(st.lists(st.sampled_from(["DNS_NAME_LONGER_THEN_255_CHARS",
                                                               "CERTIFICATE_ADDED_TO_TRUST_CHAIN"]), unique=True)),
    }
    if kind == "dv":
        spec["validation"] = {"method": method, "publisher": draw(st.sampled_from(["manual", "hook"]))}
        if spec["validation"]["publisher"] == "hook":
            spec["validation"]["hook"] = {"publish": "true"}
        if draw(st.booleans()):
            spec["csr"]["preferred_trust_chain"] = "intermediate-a"
    else:
        spec["dual_stack"] = draw(st.booleans())
        spec["exclude_sans"] = draw(st.booleans())
        spec["signature_algorithm"] = draw(st.sampled_from(["SHA-256", "SHA-1"]))
        if draw(st.booleans()):
            spec["signer"] = {"command": "reconcile --sandbox sandbox-sign"}
    # Leave some fields out so that model defaults (and their validators) take part too.
    for key in draw(st.sets(st.sampled_from(["sans", "csr", "network_configuration", "geography", "sni_only",
                                             "secure_network", "certificate_chain_type", "validation",
                                             "dual_stack", "signature_algorithm"]))):
        if key == "sans" or (key == "network_configuration" and (fips or not clone)):
            continue  # sans feed dns_names; fips/dns settings depend on them
        spec.pop(key, None)
    if not spec["sans"] and draw(st.booleans()):
        del spec["sans"]
    return ANY_SPEC.validate_python(spec)


def _tool_fields(spec: Any) -> dict[str, Any]:
    return {k: v for k, v in spec.model_dump().items() if k in TOOL_ONLY_FIELDS and k != "name"}


def _as_cps_returns(body: dict[str, Any], spec: Any) -> dict[str, Any]:
    """What CPS hands back for a body it stored: read-only fields, the CN first in sans,
    lower case, null signatureAlgorithm and no multi-stack flag echoed per v12 rules."""
    got = copy.deepcopy(body)
    got.update(id=10001, location="/cps/v2/enrollments/10001", pendingChanges=[], maxAllowedSanNames=100,
               maxAllowedWildcardSanNames=100, assignedSlots=[1], productionSlots=[1], stagingSlots=[1],
               autoRenewalStartTime=None, orgId=None)
    csr = got["csr"]
    csr["sans"] = [csr["cn"]] + [s for s in csr["sans"] if s != csr["cn"]]
    csr["cn"] = csr["cn"].upper()
    if isinstance(spec, ThirdPartyEnrollmentSpec):
        got["signatureAlgorithm"] = None
    else:
        got.pop("enableMultiStackedCertificates")
        csr.setdefault("preferredTrustChain", "default")
    dns = got["networkConfiguration"]["dnsNameSettings"]
    if dns and dns["cloneDnsNames"]:
        dns["dnsNames"] = list(csr["sans"])
    return got


# -- tests -------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_round_trip_is_lossless_and_bodies_match_the_official_schemas(tmp_path_factory: Any, spec: Any) -> None:
    root = tmp_path_factory.getbasetemp()
    assert [f for f in check_spec(spec, root) if f.severity == "error"] == []  # the strategy makes valid specs
    body = spec_to_wire(spec)
    assert _schema_errors(V12, body) == []
    # v12 added exactly one field over v11; without it the body is a valid v11 body
    v11_body = copy.deepcopy(body)
    del v11_body["networkConfiguration"]["fipsMode"]
    assert _schema_errors(V11, v11_body) == []
    assert _schema_errors(V11, body) != []  # (and the v11 check is not vacuous)
    back = wire_to_spec(body, name=spec.name, contract_id=spec.contract_id, extra=_tool_fields(spec))
    assert back == spec
    assert observed_view(body, contract_id=spec.contract_id) == cps_view(spec)


@settings(max_examples=100, deadline=None)
@given(specs())
def test_what_cps_returns_does_not_flap(spec: Any) -> None:
    returned = _as_cps_returns(spec_to_wire(spec), spec)
    assert observed_view(returned, contract_id=spec.contract_id) == cps_view(spec)
    imported = wire_to_spec(returned, name=spec.name, contract_id=spec.contract_id, extra=_tool_fields(spec))
    assert cps_view(imported) == cps_view(spec)
    # import is stable: importing what an imported spec would send gives the same spec again
    assert wire_to_spec(spec_to_wire(imported), name=spec.name, contract_id=spec.contract_id,
                        extra=_tool_fields(spec)) == imported


def _base(kind: str = "dv") -> Any:
    contact = {"first_name": "A", "last_name": "B", "email": "a@example.com", "phone": "1"}
    return ANY_SPEC.validate_python({
        "name": "www", "type": kind, "contract_id": "ctr_1", "common_name": "www.example.com",
        "sans": ["example.com"], "admin_contact": contact, "tech_contact": contact,
        "organization": {"name": "O", "phone": "1", "address_line_one": "1 St", "city": "C", "region": "R",
                         "postal_code": "1", "country_code": "US"}})


def test_dv_recipe() -> None:
    body = spec_to_wire(_base("dv"))
    assert (body["ra"], body["validationType"], body["certificateType"]) == ("lets-encrypt", "dv", "san")
    assert body["signatureAlgorithm"] == "SHA-256" and body["enableMultiStackedCertificates"] is False
    assert body["thirdParty"] is None
    assert body["csr"]["cn"] == "www.example.com" and body["csr"]["sans"] == ["example.com", "www.example.com"]
    assert "preferredTrustChain" not in body["csr"] and body["networkConfiguration"]["fipsMode"] is False
    # v12 wants every contact/org key present, null where unset
    assert body["adminContact"]["title"] is None and len(body["adminContact"]) == 12 and len(body["org"]) == 8
    assert _schema_errors(V12, body) == []
    # the schema check can fail: a missing v12-required contact key, an unknown value
    broken = copy.deepcopy(body)
    del broken["adminContact"]["title"]
    assert _schema_errors(V12, broken) and _schema_errors(V12, {**body, "ra": "digicert"})


def test_third_party_recipe() -> None:
    spec = _base("third-party")
    body = spec_to_wire(spec)
    assert (body["ra"], body["validationType"], body["certificateType"]) == ("third-party",) * 3
    assert body["thirdParty"] == {"excludeSans": False} and body["enableMultiStackedCertificates"] is True
    single = spec_to_wire(spec.model_copy(update={"dual_stack": False}))
    assert single["enableMultiStackedCertificates"] is False


def test_non_sni_sends_no_dns_name_settings() -> None:
    body = spec_to_wire(_base().model_copy(update={"sni_only": False}))
    assert body["networkConfiguration"]["dnsNameSettings"] is None
    assert spec_to_wire(_base())["networkConfiguration"]["dnsNameSettings"] == {"cloneDnsNames": True,
                                                                                "dnsNames": None}


def test_wire_to_spec_fills_cps_defaults_for_nulls() -> None:
    body = spec_to_wire(_base())
    nc = body["networkConfiguration"]
    nc.update(mustHaveCiphers=None, preferredCiphers=None, ocspStapling=None, disallowedTlsVersions=None)
    body["certificateChainType"] = None
    spec = wire_to_spec(body, name="www", contract_id="ctr_1")
    assert isinstance(spec, DvEnrollmentSpec)
    assert spec.network_configuration.must_have_ciphers == "ak-akamai-default"
    assert spec.network_configuration.ocsp_stapling == "not-set"
    assert spec.network_configuration.disallowed_tls_versions == []
    assert spec.certificate_chain_type == "default"


def test_wire_to_spec_refuses_ov_and_reports_missing_contacts() -> None:
    body = spec_to_wire(_base())
    with pytest.raises(SpecError, match="'ov' enrollments cannot be managed"):
        wire_to_spec({**body, "validationType": "ov", "id": 7}, name="x", contract_id="c")
    with pytest.raises(SpecError) as info:
        wire_to_spec({**body, "adminContact": None, "id": 7}, name="x", contract_id="c")
    assert info.value.issues[0].file == "CPS enrollment 7" and info.value.issues[0].field == "admin_contact"
    # ... unless the caller supplies them (e.g. from reconcile.yaml defaults)
    contact = {"first_name": "A", "last_name": "B", "email": "a@example.com", "phone": "1"}
    spec = wire_to_spec({**body, "adminContact": None}, name="x", contract_id="c", extra={"admin_contact": contact})
    assert spec.admin_contact.email == "a@example.com"


def test_views_ignore_what_cps_does_not_store() -> None:
    spec = _base()
    changed = spec.model_copy(update={"prevent_destroy": True, "wait_for_deployment": False})
    assert cps_view(changed) == cps_view(spec)
    assert "name" not in cps_view(spec) and "validation" not in cps_view(spec)
    assert cps_view(spec)["sans"] == ["example.com", "www.example.com"]


@pytest.mark.parametrize("path,expected", [
    ("common_name", "immutable"), ("sni_only", "immutable"), ("secure_network", "immutable"),
    ("contract_id", "immutable"), ("type", "immutable"),
    ("sans", "certificate"), ("sans[3]", "certificate"), ("csr.organization", "certificate"),
    ("signature_algorithm", "certificate"), ("dual_stack", "certificate"), ("exclude_sans", "certificate"),
    ("network_configuration.ocsp_stapling", "network"), ("geography", "network"),
    ("admin_contact.email", "metadata"), ("organization", "metadata"), ("change_management", "metadata"),
    ("prevent_destroy", "metadata"), ("validation.publisher", "metadata"),
])
def test_field_class(path: str, expected: str) -> None:
    assert field_class(path) == expected


def test_field_class_unknown_path() -> None:
    with pytest.raises(ValueError, match="unknown spec field"):
        field_class("nonsense")


def test_every_view_field_has_a_class() -> None:
    for kind in ("dv", "third-party"):
        for key in cps_view(_base(kind)):
            field_class(key)
        for key in (DvEnrollmentSpec if kind == "dv" else ThirdPartyEnrollmentSpec).model_fields:
            field_class(key)


# -- through the sandbox ---------------------------------------------------------------------

@pytest.mark.anyio
async def test_example_specs_survive_create_and_read_back_through_the_sandbox(
        sandbox_server: Any, sandbox_client: Any) -> None:
    """The acceptance test in miniature: what CPS (the sandbox) stores for a spec, read back,
    compares equal to the spec's view, and imports to the same spec."""
    from reconciler.config import load_config
    from reconciler.cps.links import id_from_link
    from reconciler.spec.loader import load_specs

    repo = Path(__file__).resolve().parents[2]
    loaded = load_specs(load_config(repo / "reconcile.yaml"))
    assert len(loaded.specs) >= 3
    for item in loaded.specs:
        spec = item.spec
        status = await sandbox_client.create_enrollment(spec.contract_id, spec_to_wire(spec))
        sandbox_server.advance(600)  # past the sandbox's one-create-per-5-minutes throttle
        enrollment = await sandbox_client.get_enrollment(id_from_link(status.enrollment))
        assert observed_view(enrollment, contract_id=spec.contract_id) == cps_view(spec), spec.name
        imported = wire_to_spec(enrollment, name=spec.name, contract_id=spec.contract_id, extra=_tool_fields(spec))
        assert imported == spec, spec.name
    listed = await sandbox_client.list_enrollments("ctr_1-SANDBOX")
    by_cn = {e.model_dump(by_alias=True)["csr"]["cn"]: e for e in listed}
    for item in loaded.specs:
        assert observed_view(by_cn[item.spec.common_name], contract_id="ctr_1-SANDBOX") == cps_view(item.spec)
