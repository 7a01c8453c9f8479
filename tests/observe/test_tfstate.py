"""Reading Terraform state (tfstate.py) and picking out the CPS resources (tfcps.py), offline."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.observe.tfcps import collect
from reconciler.observe.tfimport import state_rm_commands
from reconciler.observe.tfspec import overlay, spec_name, tool_fields
from reconciler.observe.tfstate import TfInstance, TfStateError, read_tfstate
from tests.apply.sandbox_rig import dv_spec, tp_spec
from tests.observe.tfrig import Res, provider_attributes, show_json, tfstate_v4, upload_attributes

RESOURCES = [
    Res("akamai_cps_dv_enrollment", "www", {"id": "1"}),
    Res("akamai_cps_dv_enrollment", "site", {"id": "2"}, module="module.a", index=0),
    Res("akamai_cps_dv_enrollment", "site", {"id": "3"}, module="module.a", index=1),
    Res("akamai_cps_third_party_enrollment", "this", {"id": "4"}, module="module.a.module.b", index="shop.example.com"),
    Res("akamai_cps_csr", "x", {"id": "4:1"}, mode="data", module="module.a"),
    Res("aws_route53_record", "r", {"id": "Z1"}),
]
ADDRESSES = [
    "akamai_cps_dv_enrollment.www", "module.a.akamai_cps_dv_enrollment.site[0]",
    "module.a.akamai_cps_dv_enrollment.site[1]",
    'module.a.module.b.akamai_cps_third_party_enrollment.this["shop.example.com"]',
    "module.a.data.akamai_cps_csr.x", "aws_route53_record.r"]


@pytest.mark.parametrize("build", [tfstate_v4, show_json])
def test_both_shapes_give_the_addresses_terraform_prints(build: Any) -> None:
    read = read_tfstate(json.dumps(build(RESOURCES)), "tf.json")
    assert read.shape == ("tfstate" if build is tfstate_v4 else "show-json")
    assert sorted(i.address for i in read.instances) == sorted(ADDRESSES)
    assert {i.address: i.attributes["id"] for i in read.instances}["module.a.akamai_cps_dv_enrollment.site[1]"] == "3"


def test_documents_that_are_not_format_4_state_are_refused_with_the_reason() -> None:
    with pytest.raises(TfStateError, match=r"tf.json:2:5: not JSON"):
        read_tfstate('{\n    oops}', "tf.json")
    with pytest.raises(TfStateError, match="format version 3; this reads format 4"):
        read_tfstate(json.dumps({"version": 3, "modules": []}), "tf.json")
    with pytest.raises(TfStateError, match="format version 2.0; this reads 1.x"):
        read_tfstate(json.dumps({"format_version": "2.0", "values": {}}), "tf.json")
    with pytest.raises(TfStateError, match="a Terraform plan, not state"):
        read_tfstate(json.dumps({"format_version": "1.2", "planned_values": {}}), "tf.json")
    with pytest.raises(TfStateError, match="not Terraform state"):
        read_tfstate(json.dumps({"resources": []}), "tf.json")
    with pytest.raises(TfStateError, match="flat attributes"):
        read_tfstate(json.dumps({"version": 4, "resources": [{"mode": "managed", "type": "t", "name": "n",
                                                              "instances": [{"attributes_flat": {}}]}]}), "tf.json")
    assert read_tfstate(json.dumps({"format_version": "1.0"}), "tf.json").instances == ()  # an empty state


@pytest.mark.parametrize("build", [tfstate_v4, show_json])
def test_sensitive_attributes_are_named_by_path(build: Any) -> None:
    res = Res("akamai_cps_dv_enrollment", "www", {"id": "1", "admin_contact": [{"phone": "x"}]},
              sensitive=(("admin_contact", 0, "phone"),))
    (inst,) = read_tfstate(json.dumps(build([res])), "tf.json").instances
    assert inst.sensitive == ("admin_contact.0.phone",)
    with pytest.raises(TfStateError, match=r"akamai_cps_dv_enrollment.www: Terraform marks admin_contact.0.phone"):
        collect(read_tfstate(json.dumps(build([res])), "tf.json"), "tf.json")


def test_collect_joins_by_enrollment_id_and_lists_what_it_leaves_out() -> None:
    resources = [
        Res("akamai_cps_dv_enrollment", "www", {"id": "10"}),
        Res("akamai_cps_dv_validation", "www", {"id": "10", "enrollment_id": 10}),
        Res("akamai_cps_third_party_enrollment", "shop", {"id": "11"}, module="module.m", index=0),
        Res("akamai_cps_upload_certificate", "shop", {"id": "11", "enrollment_id": 11}),
        Res("akamai_cps_upload_certificate", "lost", {"enrollment_id": 99}),
        Res("akamai_cps_new_thing", "n", {"id": "1"}),
        Res("akamai_cps_enrollment", "d", {"enrollment_id": 10}, mode="data"),
    ]
    cps = collect(read_tfstate(json.dumps(tfstate_v4(resources)), "tf.json"), "tf.json")
    assert [(e.resource.address, e.kind, e.enrollment_id) for e in cps.enrollments] == [
        ("akamai_cps_dv_enrollment.www", "dv", 10), ("module.m.akamai_cps_third_party_enrollment.shop[0]", "third-party", 11)]
    assert cps.enrollments[0].addresses == ["akamai_cps_dv_enrollment.www", "akamai_cps_dv_validation.www"]
    assert cps.enrollments[1].upload is not None and cps.enrollments[1].validation is None
    assert cps.unknown == ["akamai_cps_new_thing.n"]
    assert cps.orphans == ["akamai_cps_upload_certificate.lost (enrollment 99 has no enrollment resource in this state)"]


@pytest.mark.parametrize(("resources", "message"), [
    ([Res("akamai_cps_dv_enrollment", "a", {"id": ""})], "akamai_cps_dv_enrollment.a: no enrollment id"),
    ([Res("akamai_cps_dv_enrollment", "a", {"id": "5"}), Res("akamai_cps_dv_validation", "a", {"enrollment_id": 5}),
      Res("akamai_cps_dv_validation", "b", {"enrollment_id": 5})], "both act on enrollment 5"),
    ([Res("akamai_cps_third_party_enrollment", "a", {"id": "5"}),
      Res("akamai_cps_dv_validation", "a", {"enrollment_id": 5})], "a akamai_cps_dv_validation belongs to an akamai_cps_dv_enrollment"),
])
def test_collect_refuses_what_cannot_be_migrated(resources: list[Res], message: str) -> None:
    with pytest.raises(TfStateError, match=message):
        collect(read_tfstate(json.dumps(tfstate_v4(resources)), "tf.json"), "tf.json")


@pytest.mark.parametrize(("module", "name", "index", "expected"), [
    ("", "www", None, "www"),
    ("module.certs", "this", "shop.example.com", "certs-this-shop.example.com"),
    ("module.a.module.b", "site", 3, "a-b-site-3"),
    ("", "Www_Main", "*.Example.COM", "www_main-.example.com"),
    ("", "x", "ÄÖ ü", "x"),
    ("", "n" * 200, None, "n" * 120),
])
def test_spec_names_come_from_the_address(module: str, name: str, index: Any, expected: str) -> None:
    assert spec_name(TfInstance("managed", "akamai_cps_dv_enrollment", name, module, index)) == expected


def test_state_rm_commands_quote_for_each_keys_for_the_shell() -> None:
    assert state_rm_commands(['module.m.akamai_cps_dv_enrollment.this["it\'s"]', "akamai_cps_dv_enrollment.a"]) == [
        """terraform state rm 'module.m.akamai_cps_dv_enrollment.this["it'"'"'s"]'""",
        "terraform state rm 'akamai_cps_dv_enrollment.a'"]


def _one(res: list[Res]) -> Any:
    return collect(read_tfstate(json.dumps(tfstate_v4(res)), "tf.json"), "tf.json").enrollments[0]


def test_overlay_reads_provider_arguments_as_spec_fields() -> None:
    spec = dv_spec(csr={"city": "Boston", "preferred_trust_chain": "intermediate-a"}, geography="china+core")
    attrs = provider_attributes(spec, 7, contract_id="1-TEST")
    attrs["admin_contact"][0]["country_code"] = "us"
    values = overlay(_one([Res("akamai_cps_dv_enrollment", "www", attrs)]))
    assert values["contract_id"] == "ctr_1-TEST" and values["geography"] == "china+core"
    assert values["csr"] == {"city": "Boston", "preferred_trust_chain": "intermediate-a"}  # "" is unset
    assert values["admin_contact"]["country_code"] == "US" and "title" not in values["admin_contact"]
    assert values["sans"] == ["example.com"] and "geography" not in values["network_configuration"]
    assert values["network_configuration"]["clone_dns_names"] is True


@pytest.mark.parametrize(("network", "expected"), [
    ({"clone_dns_names": False}, {"clone_dns_names": False}),  # v9/v10: the names stay CPS's
    ({"clone_dns_names": True}, {"clone_dns_names": True, "dns_names": []}),
    ({"clone_dns_names": True, "enable_for_all_sans": False, "dns_names": ["B.example.com", "a.example.com"]},
     {"clone_dns_names": False, "dns_names": ["a.example.com", "b.example.com"]}),  # v11: enable_for_all_sans decides
    ({"clone_dns_names": False, "enable_for_all_sans": True, "dns_names": ["a.example.com"]},
     {"clone_dns_names": True, "dns_names": []}),
])
def test_dns_name_settings_across_provider_versions(network: dict[str, Any], expected: dict[str, Any]) -> None:
    attrs = provider_attributes(dv_spec(), 7)
    attrs["network_configuration"][0] = {**attrs["network_configuration"][0], **network}
    values = overlay(_one([Res("akamai_cps_dv_enrollment", "www", attrs)]))["network_configuration"]
    assert {k: values[k] for k in expected} == expected
    assert "dns_names" in values or "dns_names" not in expected


def test_tool_settings_merge_the_enrollment_and_its_upload() -> None:
    spec = tp_spec()
    res = [Res("akamai_cps_third_party_enrollment", "shop", provider_attributes(
               spec, 8, auto_approve_warnings=["B_WARN", "A_WARN"], acknowledge_pre_verification_warnings=True)),
           Res("akamai_cps_upload_certificate", "shop", upload_attributes(
               8, {}, auto_approve_warnings=["A_WARN", "C_WARN"], acknowledge_post_verification_warnings=True))]
    assert tool_fields(_one(res)) == {
        "acknowledge_pre_verification_warnings": True, "allow_duplicate_common_name": False,
        "acknowledge_post_verification_warnings": True, "acknowledge_change_management": False,
        "wait_for_deployment": False, "auto_approve_warnings": ["A_WARN", "B_WARN", "C_WARN"]}
    alone = tool_fields(_one(res[:1]))
    assert "wait_for_deployment" not in alone and alone["auto_approve_warnings"] == ["A_WARN", "B_WARN"]
