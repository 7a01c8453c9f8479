"""Diffing with the real mapping: what CPS does to a body never shows as a change (one test per
normalised field), and real spec edits are named and classified correctly.

Each case sends ``spec_to_wire(spec)`` through a CPS-like echo and then one documented CPS
quirk (CPS-API.md section 3), and checks ``observed_view`` of the result against ``cps_view``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.cps.mapping import cps_view, field_class, observed_view, spec_to_wire
from reconciler.plan.diff import diff_views, normalise, overall_class
from reconciler.plan.model import FieldChange
from reconciler.sandbox import enrollment_rules
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec

CONTACT = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1-555-0100"}
ORG = {"name": "Example Inc", "phone": "+1-555-0100", "address_line_one": "1 Main St", "city": "Cambridge",
       "region": "MA", "postal_code": "02142", "country_code": "US"}
CTR = "ctr_1-AB123"
Wire = dict[str, Any]


def dv(**over: Any) -> DvEnrollmentSpec:
    data: dict[str, Any] = {"name": "www", "type": "dv", "contract_id": CTR, "common_name": "www.example.com",
                            "sans": ["example.com", "api.example.com"], "admin_contact": CONTACT,
                            "tech_contact": CONTACT, "organization": ORG}
    data.update(over)
    return DvEnrollmentSpec.model_validate(data)


def third_party(**over: Any) -> ThirdPartyEnrollmentSpec:
    data: dict[str, Any] = {"name": "tp", "type": "third-party", "contract_id": CTR,
                            "common_name": "tp.example.com", "sans": ["b.example.com"], "admin_contact": CONTACT,
                            "tech_contact": CONTACT, "organization": ORG}
    data.update(over)
    return ThirdPartyEnrollmentSpec.model_validate(data)


def echo(body: Wire) -> Wire:
    """The enrollment document CPS answers for a stored body (the sandbox's rules, CPS-API.md 3)."""
    stored = enrollment_rules.normalise(body)
    return {**stored, "id": 10000, "location": "/cps/v2/enrollments/10000", "maxAllowedSanNames": 100,
            "maxAllowedWildcardSanNames": 100, "assignedSlots": [1234], "productionSlots": [],
            "stagingSlots": [], "autoRenewalStartTime": None, "pendingChanges": []}


def changes(spec: DvEnrollmentSpec | ThirdPartyEnrollmentSpec, wire: Wire) -> tuple[FieldChange, ...]:
    return diff_views(observed_view(wire, contract_id=CTR), cps_view(spec), field_class)


def _sans(f: Callable[[list[str]], list[str]]) -> Callable[[Wire], None]:
    def mutate(w: Wire) -> None:
        w["csr"]["sans"] = f(w["csr"]["sans"])
    return mutate


def _set(*path_value: Any) -> Callable[[Wire], None]:
    *path, value = path_value

    def mutate(w: Wire) -> None:
        node = w
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _upper_names(w: Wire) -> None:
    w["csr"]["cn"] = w["csr"]["cn"].upper()
    w["csr"]["sans"] = [s.upper() for s in w["csr"]["sans"]]


def _contacts_all_keys(w: Wire) -> None:
    for key in ("adminContact", "techContact"):
        w[key] = {k: w[key].get(k) for k in enrollment_rules.CONTACT_KEYS}


def _lower_country(w: Wire) -> None:
    w["org"]["country"] = "us"
    w["adminContact"]["country"] = None


# One entry per field CPS may hand back differently from what we sent.
DV_QUIRKS: dict[str, Callable[[Wire], None]] = {
    "sans_reordered": _sans(lambda s: list(reversed(s))),
    "sans_upper_case": _upper_names,
    "cn_listed_in_sans_first": _sans(lambda s: ["www.example.com", *[x for x in s if x != "www.example.com"]]),
    "cn_missing_from_sans": _sans(lambda s: [x for x in s if x != "www.example.com"]),
    "tls_versions_reordered": _set("networkConfiguration", "disallowedTlsVersions", ["TLSv1_1", "TLSv1"]),
    "fips_mode_absent": lambda w: w["networkConfiguration"].pop("fipsMode", None),
    "fips_mode_false": _set("networkConfiguration", "fipsMode", False),
    "quic_null": _set("networkConfiguration", "quicEnabled", None),
    "mtls_null": _set("networkConfiguration", "clientMutualAuthentication", None),
    "dns_names_null_when_cloned": _set("networkConfiguration", "dnsNameSettings",
                                       {"cloneDnsNames": True, "dnsNames": None}),
    "dns_names_listed_when_cloned": _set("networkConfiguration", "dnsNameSettings",
                                         {"cloneDnsNames": True, "dnsNames": ["www.example.com"]}),
    "preferred_trust_chain_default": _set("csr", "preferredTrustChain", "default"),
    "contacts_with_every_key": _contacts_all_keys,
    "country_case": _lower_country,
    "multi_stack_echoed_false": _set("enableMultiStackedCertificates", False),
    "third_party_null": _set("thirdParty", None),
    "org_id_null": _set("orgId", None),
    "read_only_fields": lambda w: w.update(autoRenewalStartTime="2025-03-01T00:00:00Z", productionSlots=[1],
                                           pendingChanges=[{"location": "/cps/v2/enrollments/1/changes/2",
                                                            "changeType": "new-certificate"}]),
    "unknown_new_field": _set("someFutureField", {"x": 1}),
    "empty_csr_subject_strings": lambda w: w["csr"].update(ou=""),
}


@pytest.mark.parametrize("quirk", sorted(DV_QUIRKS))
def test_cps_quirk_does_not_flap_dv(quirk: str) -> None:
    spec = dv()
    wire = echo(spec_to_wire(spec))
    DV_QUIRKS[quirk](wire)
    assert changes(spec, wire) == ()


TP_QUIRKS: dict[str, Callable[[Wire], None]] = {
    "signature_algorithm_null": _set("signatureAlgorithm", None),
    "sans_upper_case": _upper_names,
    "exclude_sans_false": _set("thirdParty", {"excludeSans": False}),
}


@pytest.mark.parametrize("quirk", sorted(TP_QUIRKS))
def test_cps_quirk_does_not_flap_third_party(quirk: str) -> None:
    spec = third_party(signature_algorithm="SHA-256")
    wire = echo(spec_to_wire(spec))
    TP_QUIRKS[quirk](wire)
    assert changes(spec, wire) == ()


def test_defaults_cps_fills_in_do_not_flap() -> None:
    # A spec that leaves every network setting at its default: the echoed body is complete.
    spec = dv(network_configuration={})
    sent = spec_to_wire(spec)
    assert changes(spec, echo(sent)) == ()


def test_non_sni_enrollment_ignores_dns_name_settings() -> None:
    spec = dv(sni_only=False)
    wire = echo(spec_to_wire(spec))
    wire["networkConfiguration"]["dnsNameSettings"] = {"cloneDnsNames": True, "dnsNames": ["x.example.com"]}
    assert changes(spec, wire) == ()


# -- real edits ----------------------------------------------------------------------------------

def _edit(base: DvEnrollmentSpec, **over: Any) -> tuple[FieldChange, ...]:
    """Changes from CPS holding ``base`` to a spec with ``over`` applied."""
    wanted = dv(**{**base.model_dump(mode="json", exclude={"name"}), "name": base.name, **over})
    return changes(wanted, echo(spec_to_wire(base)))


@pytest.mark.parametrize(("over", "paths", "cls"), [
    ({"sans": ["example.com", "api.example.com", "new.example.com"]}, ["sans"], "certificate"),
    ({"csr": {"organization": "Other Inc"}}, ["csr.organization"], "certificate"),
    ({"certificate_chain_type": "symantec1kroot"}, ["certificate_chain_type"], "certificate"),
    ({"network_configuration": {"ocsp_stapling": "off"}}, ["network_configuration.ocsp_stapling"], "network"),
    ({"network_configuration": {"disallowed_tls_versions": ["TLSv1"]}},
     ["network_configuration.disallowed_tls_versions"], "network"),
    ({"geography": "china+core"}, ["geography"], "network"),
    ({"admin_contact": {**CONTACT, "first_name": "Grace"}}, ["admin_contact.first_name"], "metadata"),
    ({"change_management": True}, ["change_management"], "metadata"),
    ({"common_name": "new.example.com", "sans": ["example.com", "api.example.com", "www.example.com"]},
     ["common_name", "sans"], "immutable"),
    ({"sni_only": False}, ["network_configuration.clone_dns_names", "sni_only"], "immutable"),
    ({"secure_network": "standard-tls"}, ["secure_network"], "immutable"),
])
def test_real_edits_are_named_and_classified(over: dict[str, Any], paths: list[str], cls: str) -> None:
    found = _edit(dv(), **over)
    assert [c.path for c in found] == paths
    assert overall_class(found) == cls


def test_change_carries_old_and_new_values() -> None:
    (c,) = _edit(dv(), network_configuration={"ocsp_stapling": "off"})
    assert (c.old, c.new) == ("on", "off")


def test_tool_only_fields_are_never_a_cps_change() -> None:
    base = dv()
    assert _edit(base, prevent_destroy=True, wait_for_deployment=False, acknowledge_change_management=True,
                 validation={"method": "http-01", "publisher": "manual"}) == ()


def test_normalise_treats_none_as_absent_and_host_lists_as_sets() -> None:
    assert normalise({"a": None, "sans": ["B.example.com.", "a.example.com"], "n": {"x": None}}) == {
        "sans": ["a.example.com", "b.example.com"], "n": {}}
    original = {"sans": ["b", "a"]}
    snapshot = copy.deepcopy(original)
    normalise(original)
    assert original == snapshot  # inputs are never mutated
