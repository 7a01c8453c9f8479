from __future__ import annotations

import json
from pathlib import Path

from reconciler.cps.models import (
    CertificateAndTrustChain,
    Change,
    ChangeId,
    Deployments,
    Enrollment,
    EnrollmentStatus,
    Warnings,
)

REFERENCE = Path("/work/shared/reference/cps-v2")


def test_enrollment_round_trip_keeps_unknown_fields() -> None:
    wire = json.loads((REFERENCE / "latest-parts/examples/enrollment.v12.json").read_text())
    wire["someFutureField"] = {"nested": [1, 2]}
    wire["networkConfiguration"]["brandNewSetting"] = "x"
    wire["id"] = 10001
    enrollment = Enrollment.model_validate(wire)
    assert enrollment.enrollment_id == 10001
    assert enrollment.network_configuration is not None
    assert enrollment.csr is not None and enrollment.csr.cn
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
    wire = json.loads((REFERENCE / "latest-parts/examples/deployments.v8-3p.json").read_text())
    deployments = Deployments.model_validate(wire)
    assert deployments.production is not None
    assert deployments.production.certificates
    assert deployments.to_wire() == wire


def test_certificate_upload_item_dumps_wire_names() -> None:
    item = CertificateAndTrustChain(key_algorithm="RSA", certificate="PEM", trust_chain=None)
    assert item.to_wire() == {"keyAlgorithm": "RSA", "certificate": "PEM", "trustChain": None}


def test_warning_lines() -> None:
    assert Warnings(warnings="[WARNINGS]\nfirst\n\nsecond\n").lines == ["[WARNINGS]", "first", "second"]
