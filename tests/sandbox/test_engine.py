"""Enrollment-level behaviour of the engine: create/list/get, PUT semantics (CPS-API.md 3.3),
conflicts, cancel, delete, schedules, and the snapshot round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography import x509

from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.clock import VirtualClock
from reconciler.sandbox.engine import Engine, EngineConfig
from reconciler.sandbox.problems import ApiProblem

from .test_engine_support import (
    CONTRACT,
    START,
    ack,
    assert_valid,
    complete_dv,
    dv_body,
    ids,
    make_engine,
    run_until_input,
    status_of,
    third_party_body,
)


def _problem(call: Any, *args: Any, **kwargs: Any) -> ApiProblem:
    with pytest.raises(ApiProblem) as caught:
        call(*args, **kwargs)
    return caught.value


def _deployed(engine: Engine, body: dict[str, Any] | None = None) -> int:
    eid, cid = ids(engine.create_enrollment(CONTRACT, body or dv_body())[1])
    complete_dv(engine, eid, cid)
    return eid


def test_create_fills_read_only_fields_and_every_v12_key() -> None:
    engine = make_engine()
    request = dv_body(csr={"cn": "WWW.Example.com", "sans": ["api.example.com"]})
    request["networkConfiguration"] = {
        "geography": "core",
        "secureNetwork": "enhanced-tls",
        "sniOnly": False,
        "quicEnabled": False,
    }
    del request["org"]
    code, status = engine.create_enrollment("ctr_" + CONTRACT, request)
    assert (code, status) == (
        202,
        {"enrollment": "/cps/v2/enrollments/10000", "changes": ["/cps/v2/enrollments/10000/changes/10000"]},
    )
    enrollment = assert_valid("enrollment.v12", engine.get_enrollment(10000))
    assert enrollment["id"] == 10000 and enrollment["location"] == "/cps/v2/enrollments/10000"
    assert enrollment["csr"]["sans"] == ["api.example.com", "WWW.Example.com"]  # CN added once
    assert enrollment["csr"]["st"] is None and enrollment["org"] is None
    assert enrollment["maxAllowedSanNames"] == enrollment["maxAllowedWildcardSanNames"] == 100
    assert enrollment["productionSlots"] == [] and len(enrollment["assignedSlots"]) == 1
    network = enrollment["networkConfiguration"]
    assert network["mustHaveCiphers"] == network["preferredCiphers"] == "ak-akamai-default"
    assert (network["ocspStapling"], network["disallowedTlsVersions"], network["fipsMode"]) == ("not-set", [], False)
    assert network["dnsNameSettings"] is None and network["clientMutualAuthentication"] is None
    keys = set(assert_valid("enrollment.v12", enrollment))
    assert keys == set(json.loads(json.dumps(enrollment)))  # plain JSON
    assert {"adminContact", "techContact", "thirdParty", "orgId", "certificateChainType"} <= keys
    assert enrollment["adminContact"]["addressLineTwo"] is None
    listed = engine.list_enrollments(CONTRACT)
    assert_valid("enrollments.v12", {"enrollments": listed})
    assert [e["id"] for e in listed] == [10000]
    assert engine.list_enrollments("ctr_" + CONTRACT) == listed
    assert engine.list_enrollments("1-OTHER") == []


def test_ids_count_separately_and_the_second_enrollment_gets_the_next_id() -> None:
    engine = make_engine()
    first = _deployed(engine)
    body = engine.get_enrollment(first)
    body["networkConfiguration"]["ocspStapling"] = "on"
    engine.update_enrollment(first, body)  # opens change 10001
    code, status = engine.create_enrollment(CONTRACT, dv_body("other.example.com", []))
    assert ids(status) == (10001, 10002)


def test_create_is_throttled_per_contract() -> None:
    engine = make_engine(create_throttle_seconds=300)
    engine.create_enrollment(CONTRACT, dv_body("a.example.com", []))
    problem = _problem(engine.create_enrollment, CONTRACT, dv_body("b.example.com", []))
    assert problem.status == 409 and "300 seconds" in problem.detail
    engine.create_enrollment("1-OTHER", dv_body("b.example.com", []))  # another contract is free
    engine.advance(301)
    assert engine.create_enrollment(CONTRACT, dv_body("b.example.com", []))[0] == 202


def test_duplicate_cn_needs_permission() -> None:
    engine = make_engine()
    engine.create_enrollment(CONTRACT, dv_body("www.example.com", []))
    problem = _problem(engine.create_enrollment, CONTRACT, dv_body("WWW.example.com", []))
    assert problem.status == 409 and "allow-duplicate-cn" in problem.detail
    assert engine.create_enrollment(CONTRACT, dv_body("www.example.com", []), allow_duplicate_cn=True)[0] == 202


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (dv_body(sans=[f"n{i}.example.com" for i in range(100)]), "at most 100"),
        (dv_body(sans=["not a host"]), "valid host name"),
        (dv_body(ra="third-party"), "lets-encrypt"),
        (dv_body(validationType="ov", ra="symantec"), "not supported"),
    ],
)
def test_semantic_errors_are_400(body: dict[str, Any], fragment: str) -> None:
    problem = _problem(make_engine().create_enrollment, CONTRACT, body)
    assert problem.status == 400 and fragment in problem.detail


def test_put_of_what_get_returned_changes_nothing() -> None:
    engine = make_engine()
    eid = _deployed(engine)
    assert engine.update_enrollment(eid, engine.get_enrollment(eid)) == (
        200,
        {"enrollment": f"/cps/v2/enrollments/{eid}", "changes": []},
    )


def test_metadata_only_edit_is_200_without_a_change() -> None:
    engine = make_engine()
    eid = _deployed(engine)
    body = engine.get_enrollment(eid)
    body["techContact"]["email"] = "new@example.com"
    body["changeManagement"] = False
    code, status = engine.update_enrollment(eid, body)
    assert (code, status["changes"]) == (200, [])
    assert engine.get_enrollment(eid)["techContact"]["email"] == "new@example.com"


@pytest.mark.parametrize(
    "edit",
    [
        lambda b: b["csr"].update(cn="other.example.com"),
        lambda b: b["networkConfiguration"].update(sniOnly=False),
        lambda b: b["networkConfiguration"].update(secureNetwork="standard-tls"),
    ],
)
def test_immutable_fields_are_400(edit: Any) -> None:
    engine = make_engine()
    eid = _deployed(engine)
    body = engine.get_enrollment(eid)
    edit(body)
    problem = _problem(engine.update_enrollment, eid, body)
    assert problem.status == 400 and "cannot change" in problem.detail


def test_network_only_update_redeploys_the_current_certificate() -> None:
    engine = make_engine()
    eid = _deployed(engine)
    before = engine.get_deployment(eid, "production")["primaryCertificate"]
    body = engine.get_enrollment(eid)
    body["networkConfiguration"].update(
        ocspStapling="on", dnsNameSettings={"cloneDnsNames": False, "dnsNames": ["www.example.com"]}
    )
    code, status = engine.update_enrollment(eid, body)
    assert code == 202
    cid = ids(status)[1]
    assert engine.get_enrollment(eid)["pendingChanges"] == [
        {"location": f"/cps/v2/enrollments/{eid}/changes/{cid}", "changeType": None}
    ]
    # No challenges, no change management: straight to deployment with the same certificate.
    assert run_until_input(engine, eid, cid) == ("complete", "completed", [])
    after = assert_valid("deployment.v8", engine.get_deployment(eid, "production"))
    assert after["primaryCertificate"] == before
    assert after["ocspStapled"] is True and after["networkConfiguration"]["dnsNames"] == ["www.example.com"]
    assert engine.get_change_history(eid)["changes"][0]["action"] == "update-network-configuration"
    assert len(engine.get_certificate_history(eid)["certificates"]) == 1


def test_staging_bypass_skips_staging_for_a_network_change() -> None:
    engine = make_engine()
    eid = _deployed(engine)
    body = engine.get_enrollment(eid)
    body["networkConfiguration"]["preferredCiphers"] = "ak-akamai-2023q1"
    cid = ids(engine.update_enrollment(eid, body, allow_staging_bypass=True)[1])[1]
    seen = []
    while status_of(engine, eid, cid)[1] == "running":
        seen.append(status_of(engine, eid, cid)[0])
        engine.advance(60)
    assert status_of(engine, eid, cid)[0] == "complete"
    assert "deploy-staging" not in seen and "deploy-production" in seen
    assert engine.get_deployment(eid, "staging")["networkConfiguration"]["preferredCiphers"] == "ak-akamai-2023q1"


def test_subject_change_is_a_modify_certificate_change() -> None:
    engine = make_engine()
    eid = _deployed(engine)
    body = engine.get_enrollment(eid)
    body["csr"]["o"] = "New Name Inc"
    code, status = engine.update_enrollment(eid, body)
    assert code == 202
    assert engine.get_enrollment(eid)["pendingChanges"][0]["changeType"] == "modify-certificate"


def test_force_renewal_opens_a_renewal_change() -> None:
    engine = make_engine()
    eid = _deployed(engine)
    code, status = engine.update_enrollment(eid, engine.get_enrollment(eid), force_renewal=True)
    assert code == 202
    assert engine.get_enrollment(eid)["pendingChanges"][0]["changeType"] == "renewal"


def test_edits_while_a_change_is_pending_need_permission_to_cancel() -> None:
    engine = make_engine()
    eid, first = ids(engine.create_enrollment(CONTRACT, dv_body())[1])
    run_until_input(engine, eid, first)
    old_tokens = engine.get_input_info(eid, first, "lets-encrypt-challenges")
    body = engine.get_enrollment(eid)
    body["techContact"]["phone"] = "+1 555 0199"
    problem = _problem(engine.update_enrollment, eid, body)
    assert (problem.status, problem.slug, problem.title) == (
        409,
        "cannot-cancel-pending-change",
        "Cannot cancel pending change.",
    )
    # With permission the pending change is cancelled and the certificate change reopened, so a
    # careless client restarts validation with fresh tokens (CPS-API.md 12.9).
    code, status = engine.update_enrollment(eid, body, allow_cancel_pending_changes=True)
    second = ids(status)[1]
    assert code == 202 and second != first
    assert status_of(engine, eid, first) == ("cancelled", "cancelled", [])
    assert engine.get_enrollment(eid)["pendingChanges"][0]["changeType"] == "new-certificate"
    run_until_input(engine, eid, second)
    new_tokens = engine.get_input_info(eid, second, "lets-encrypt-challenges")
    assert new_tokens != old_tokens
    assert [c["status"] for c in engine.get_change_history(eid)["changes"]] == ["incomplete", "cancelled"]


def test_cancel_change_restores_the_body_and_is_idempotent() -> None:
    engine = make_engine()
    eid = _deployed(engine)
    body = engine.get_enrollment(eid)
    body["csr"]["sans"] = [*body["csr"]["sans"], "more.example.com"]
    cid = ids(engine.update_enrollment(eid, body)[1])[1]
    link = {"change": f"/cps/v2/enrollments/{eid}/changes/{cid}"}
    assert assert_valid("change-id.v1", engine.cancel_change(eid, cid)) == link
    assert engine.cancel_change(eid, cid) == link
    enrollment = engine.get_enrollment(eid)
    assert "more.example.com" not in enrollment["csr"]["sans"] and enrollment["pendingChanges"] == []
    problem = _problem(engine.cancel_change, eid, 10000)  # the completed creation change
    assert (problem.status, problem.slug) == (409, "invalid-enrollment-state")


def test_inputs_at_the_wrong_moment() -> None:
    engine = make_engine()
    eid, cid = ids(engine.create_enrollment(CONTRACT, dv_body())[1])
    assert _problem(engine.get_input_info, eid, cid, "lets-encrypt-challenges").status == 404
    problem = _problem(engine.post_input_update, eid, cid, "change-management-ack", {"acknowledgement": "acknowledge"})
    assert (problem.status, problem.slug) == (409, "invalid-enrollment-state")
    assert _problem(engine.get_change, eid, 99999).status == 404
    assert _problem(engine.get_enrollment, 99999).status == 404
    assert _problem(engine.get_input_info, eid, cid, "no-such-info").status == 404


def test_delete_without_deployment_is_immediate() -> None:
    engine = make_engine()
    eid, cid = ids(engine.create_enrollment(CONTRACT, dv_body())[1])
    problem = _problem(engine.delete_enrollment, eid)
    assert problem.status == 409 and problem.slug == "cannot-cancel-pending-change"
    code, status = engine.delete_enrollment(eid, allow_cancel_pending_changes=True)
    assert (code, assert_valid("enrollment-status.v1", status)["changes"]) == (200, [])
    assert _problem(engine.get_enrollment, eid).status == 404


def test_delete_of_a_deployed_enrollment_takes_effect_later() -> None:
    engine = make_engine()
    eid = _deployed(engine)
    assert engine.delete_enrollment(eid)[0] == 202
    assert engine.get_enrollment(eid)["id"] == eid  # still there for a while
    body = engine.get_enrollment(eid)
    body["techContact"]["email"] = "x@example.com"
    assert _problem(engine.update_enrollment, eid, body).status == 409
    engine.advance(3600)
    assert _problem(engine.get_enrollment, eid).status == 404
    assert engine.list_enrollments(CONTRACT) == []


def test_deployment_schedule_round_trip_and_hold() -> None:
    engine = make_engine()
    eid, cid = ids(engine.create_enrollment(CONTRACT, dv_body(changeManagement=False), deploy_not_before="2030-01-03")[1])
    assert assert_valid("deployment-schedule.v1", engine.get_deployment_schedule(eid, cid)) == {
        "notBefore": "2030-01-03T00:00:00Z",
        "notAfter": None,
    }
    run_until_input(engine, eid, cid)
    ack(engine, eid, cid, "lets-encrypt-challenges-completed")
    engine.advance(86400)  # one day in: on staging, the schedule holds production until 3 January
    assert status_of(engine, eid, cid)[0] == "deploy-production"
    deployed = engine.get_deployments(eid)
    assert deployed["staging"]["primaryCertificate"] and not deployed["production"]["primaryCertificate"]
    out = engine.put_deployment_schedule(eid, cid, {"notBefore": "2030-01-05T00:00:00Z", "notAfter": None})
    assert assert_valid("change-id.v1", out)["change"].endswith(f"/changes/{cid}")
    engine.advance(2 * 86400)
    assert status_of(engine, eid, cid)[0] != "complete"
    engine.advance(2 * 86400)
    assert status_of(engine, eid, cid)[0] == "complete"
    assert _problem(engine.put_deployment_schedule, eid, cid, {"notBefore": None}).status == 409


def test_missing_key_type_can_be_added_to_a_third_party_enrollment() -> None:
    engine = make_engine()
    eid, cid = ids(engine.create_enrollment(CONTRACT, third_party_body(multi=False))[1])
    run_until_input(engine, eid, cid)
    csr = engine.get_input_info(eid, cid, "third-party-csr")["csrs"][0]["csr"]
    leaf, chain = CertificateAuthority("Customer", now=START).sign_csr(csr, now=START)
    engine.post_input_update(
        eid,
        cid,
        "third-party-cert-and-trust-chain",
        {"certificatesAndTrustChains": [{"keyAlgorithm": "RSA", "certificate": leaf, "trustChain": chain}]},
    )
    run_until_input(engine, eid, cid)
    ack(engine, eid, cid, "change-management-ack")
    run_until_input(engine, eid, cid)
    body = engine.get_enrollment(eid)
    body["enableMultiStackedCertificates"] = True
    assert engine.update_enrollment(eid, body)[0] == 200  # takes effect at the next renewal
    code, status = engine.update_enrollment(eid, body, allow_missing_certificate_addition=True)
    assert code == 202
    new = ids(status)[1]
    run_until_input(engine, eid, new)
    csrs = engine.get_input_info(eid, new, "third-party-csr")["csrs"]
    assert [c["keyAlgorithm"] for c in csrs] == ["RSA", "ECDSA"]


def test_snapshot_round_trip_continues_the_workflow() -> None:
    engine = make_engine()
    eid = _deployed(engine)
    body = engine.get_enrollment(eid)
    body["csr"]["sans"] = [*body["csr"]["sans"], "later.example.com"]
    cid = ids(engine.update_enrollment(eid, body)[1])[1]
    run_until_input(engine, eid, cid)
    snapshot = json.loads(json.dumps(engine.snapshot()))  # must be plain JSON

    restored = Engine.from_snapshot(EngineConfig(create_throttle_seconds=0, validation_policy="trust-ack"), snapshot,
                                    speed=0)
    assert restored.clock.now() == engine.clock.now()
    assert restored.ca.root_pem == engine.ca.root_pem
    for call in ("get_enrollment", "get_deployments", "get_change_history", "get_certificate_history"):
        assert getattr(restored, call)(eid) == getattr(engine, call)(eid)
    assert restored.get_change(eid, cid) == engine.get_change(eid, cid)
    assert restored.get_input_info(eid, cid, "lets-encrypt-challenges") == engine.get_input_info(
        eid, cid, "lets-encrypt-challenges"
    )
    # The app's way: clock and CA rebuilt separately, data passed in.
    again = Engine(
        EngineConfig(create_throttle_seconds=0, validation_policy="trust-ack"),
        VirtualClock.from_json(snapshot["clock"], speed=0),
        CertificateAuthority.from_json(snapshot["ca"]),
        data=snapshot,
    )
    complete_dv(again, eid, cid)
    pem = again.get_deployment(eid, "production")["primaryCertificate"]["certificate"]
    leaf = x509.load_pem_x509_certificate(pem.encode())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "later.example.com" in names.get_values_for_type(x509.DNSName)
    # Counters survive: the next ids follow on.
    code, status = again.create_enrollment(CONTRACT, dv_body("next.example.com", []))
    assert ids(status) == (eid + 1, cid + 1)
    # The original engine is untouched by the restored one's progress.
    assert engine.get_change(eid, cid)["statusInfo"]["status"] == "coodinate-domain-validation"


def test_refuses_unknown_snapshot_format() -> None:
    with pytest.raises(ValueError, match="format"):
        Engine(EngineConfig(), VirtualClock(), CertificateAuthority(), data={"format": 99})


def test_third_party_defaults_exclude_sans_to_false() -> None:
    engine = make_engine()
    body = third_party_body()
    del body["thirdParty"]
    eid, _ = ids(engine.create_enrollment(CONTRACT, body)[1])
    enrollment = engine.get_enrollment(eid)
    assert enrollment["thirdParty"] == {"excludeSans": False}
    assert engine.update_enrollment(eid, body, allow_cancel_pending_changes=True)[0] == 200  # nothing changed


def test_an_edit_inside_the_dv_auto_renewal_window_needs_renewal_date_check_override() -> None:
    engine = make_engine()
    eid = _deployed(engine)
    body = engine.get_enrollment(eid)
    body["techContact"]["email"] = "x@example.com"
    engine.advance(75 * 86400)  # 15 days before the 90-day certificate expires: CPS is renewing
    problem = _problem(engine.update_enrollment, eid, body)
    assert problem.status == 409 and "auto-renewal window" in str(problem.detail)
    code, _ = engine.update_enrollment(eid, body, renewal_date_check_override=True,
                                       allow_cancel_pending_changes=True)
    assert code in (200, 202)
