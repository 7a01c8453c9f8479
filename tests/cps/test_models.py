from __future__ import annotations

from reconciler.cps.models import (
    CertificateAndTrustChain,
    Change,
    ChangeId,
    Deployments,
    Enrollment,
    EnrollmentStatus,
    Warnings,
)

from .conftest import third_party_body

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_enrollment_round_trip_keeps_unknown_fields() -> None:
    wire = {**third_party_body(), "location": "/cps/v2/enrollments/10001", "maxAllowedSanNames": 100,
            "pendingChanges": [{"location": "/cps/v2/enrollments/10001/changes/10002", "changeType": "new-certificate"}],
            "orgId": None, "autoRenewalStartTime": None, "assignedSlots": [1234]}
    wire["someFutureField"] = {"nested": [1, 2]}
    wire["networkConfiguration"]["brandNewSetting"] = "x"
    wire["id"] = 10001
    enrollment = Enrollment.model_validate(wire)
    assert enrollment.enrollment_id == 10001
    assert enrollment.network_configuration is not None
    assert enrollment.csr is not None and enrollment.csr.cn
    assert enrollment.pending_change_ids == [10002]
    assert enrollment.to_wire() == wire


def test_snake_and_camel_names_both_accepted() -> None:
    a = Enrollment.model_validate({"validationType": "dv", "changeManagement": True})
    b = Enrollment(validation_type="dv", change_management=True)
    assert a.to_wire() == b.to_wire() == {"validationType": "dv", "changeManagement": True}


def test_change_helpers() -> None:
    change = Change.model_validate({
        "statusInfo": {"state": "awaiting-input", "status": "coodinate-domain-validation",
                       "description": "d", "deploymentSchedule": {"notBefore": None, "notAfter": None}},
        "allowedInput": [{"type": "lets-encrypt-challenges", "requiredToProceed": False,
                          "info": "/cps/v2/enrollments/1/changes/2/input/info/lets-encrypt-challenges",
                          "update": "/cps/v2/enrollments/1/changes/2/input/update/lets-encrypt-challenges-completed"}],
    })
    assert change.state == "awaiting-input"
    assert change.allowed("lets-encrypt-challenges") is not None
    assert change.allowed("change-management") is None


def test_links_in_status_documents() -> None:
    status = EnrollmentStatus.model_validate({"enrollment": "/cps/v2/enrollments/10002",
                                              "changes": ["/cps/v2/enrollments/10002/changes/10003"]})
    assert status.enrollment_id == 10002 and status.change_ids == [10003]
    cid = ChangeId.model_validate({"change": "/cps/v2/enrollments/10002/changes/10003"})
    assert (cid.enrollment_id, cid.change_id) == (10002, 10003)


def test_deployments_example_parses() -> None:
    network = {"geography": "core", "secureNetwork": "enhanced-tls", "mustHaveCiphers": "ak-akamai-2020q1",
               "preferredCiphers": "ak-akamai-2020q1", "disallowedTlsVersions": ["TLSv1"], "dnsNames": ["a.example"],
               "ocspStapling": "on", "quicEnabled": False, "sniOnly": True, "fipsMode": False}
    rsa = {"certificate": PEM, "trustChain": PEM, "expiry": "2030-01-01T00:00:00Z", "keyAlgorithm": "RSA",
           "signatureAlgorithm": "SHA-256"}
    production = {"ocspStapled": False, "ocspUris": None, "networkConfiguration": network,
                  "primaryCertificate": rsa, "multiStackedCertificates": [{**rsa, "keyAlgorithm": "ECDSA"}]}
    wire = {"production": production,
            "staging": {**production, "primaryCertificate": None, "multiStackedCertificates": []}}
    deployments = Deployments.model_validate(wire)
    assert deployments.production is not None
    assert [c.key_algorithm for c in deployments.production.certificates] == ["RSA", "ECDSA"]
    assert deployments.staging is not None and deployments.staging.certificates == []
    assert deployments.to_wire() == wire


def test_certificate_upload_item_dumps_wire_names() -> None:
    item = CertificateAndTrustChain(key_algorithm="RSA", certificate="PEM", trust_chain=None)
    assert item.to_wire() == {"keyAlgorithm": "RSA", "certificate": "PEM", "trustChain": None}


def test_warning_lines() -> None:
    assert Warnings(warnings="[WARNINGS]\nfirst\n\nsecond\n").lines == ["[WARNINGS]", "first", "second"]
