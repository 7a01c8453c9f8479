"""Every CpsClient operation: method, path, query, exact media types, body shape (validated against
the official schema for its Content-Type) and the typed result. CPS is played by MockTransport."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reconciler.cps.client import CpsClient, enrollment_wire
from reconciler.cps.credentials import Credentials
from reconciler.cps.models import (
    CertificateAndTrustChain,
    Change,
    ChangeId,
    Deployment,
    Enrollment,
    EnrollmentStatus,
)
from reconciler.cps.retry import RetryPolicy
from reconciler.errors import (
    AuthenticationError,
    Conflict,
    CpsApiError,
    NotFound,
    RateLimited,
    TransportError,
)

from .conftest import dv_body, third_party_body, validate_request_body

pytestmark = pytest.mark.anyio

CREDS = Credentials(host="akab-test.luna.akamaiapis.net", client_token="akab-ct-SECRET1",
                    client_secret="c2VjcmV0U0VDUkVUMg==", access_token="akab-at-SECRET3",
                    account_switch_key="1-SWITCH:1-KEY")
E = "/cps/v2/enrollments/10001"
C = f"{E}/changes/20002"
CHANGE_ID = {"change": C}
STATUS = {"enrollment": E, "changes": [C]}
MT = "application/vnd.akamai.cps.{}+json"


async def no_sleep(_: float) -> None:
    return None


def client_for(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> CpsClient:
    kwargs.setdefault("retry", RetryPolicy(sleep=no_sleep))
    return CpsClient(CREDS, transport=httpx.MockTransport(handler), **kwargs)


@dataclass
class Op:
    name: str
    call: Callable[[CpsClient], Awaitable[Any]]
    method: str
    path: str
    accept: str
    params: dict[str, str]
    answer: Any
    content_type: str | None = None
    status: int = 200


UPLOAD = [CertificateAndTrustChain(key_algorithm="RSA", certificate="-----BEGIN CERTIFICATE-----\nA\n",
                                   trust_chain="-----BEGIN CERTIFICATE-----\nB\n"),
          CertificateAndTrustChain(key_algorithm="ECDSA", certificate="-----BEGIN CERTIFICATE-----\nC\n",
                                   trust_chain=None)]
DEPLOYMENT = {"networkConfiguration": {"sniOnly": True, "quicEnabled": False}, "primaryCertificate": None,
              "multiStackedCertificates": []}

OPS = [
    Op("list", lambda c: c.list_enrollments("ctr_1-AB123"), "GET", "/cps/v2/enrollments", MT.format("enrollments.v12"),
       {"contractId": "1-AB123"}, {"enrollments": [{"id": 10001, "csr": {"cn": "a.example.com"}}]}),
    Op("get", lambda c: c.get_enrollment(10001), "GET", E, MT.format("enrollment.v12"), {}, {"id": 10001}),
    Op("create", lambda c: c.create_enrollment("1-AB123", dv_body(), allow_duplicate_cn=True,
                                               deploy_not_after=date(2030, 1, 2), deploy_not_before="2029-12-01"),
       "POST", "/cps/v2/enrollments", MT.format("enrollment-status.v1"),
       {"contractId": "1-AB123", "allow-duplicate-cn": "true", "deploy-not-after": "2030-01-02",
        "deploy-not-before": "2029-12-01"}, STATUS, MT.format("enrollment.v12"), 202),
    Op("update", lambda c: c.update_enrollment(10001, third_party_body(), allow_cancel_pending_changes=True,
                                               allow_staging_bypass=True, force_renewal=True,
                                               renewal_date_check_override=True,
                                               allow_missing_certificate_addition=True),
       "PUT", E, MT.format("enrollment-status.v1"),
       {"allow-cancel-pending-changes": "true", "allow-staging-bypass": "true", "force-renewal": "true",
        "renewal-date-check-override": "true", "allow-missing-certificate-addition": "true"},
       STATUS, MT.format("enrollment.v12"), 202),
    Op("update-plain", lambda c: c.update_enrollment(10001, dv_body()), "PUT", E, MT.format("enrollment-status.v1"),
       {}, {"enrollment": E, "changes": []}, MT.format("enrollment.v12")),
    Op("delete", lambda c: c.delete_enrollment(10001, allow_cancel_pending_changes=True),
       "DELETE", E, MT.format("enrollment-status.v1"), {"allow-cancel-pending-changes": "true"}, STATUS),
    Op("change", lambda c: c.get_change(10001, 20002), "GET", C, MT.format("change.v2"), {},
       {"statusInfo": {"state": "running", "status": "deploy-staging", "description": "x",
                       "deploymentSchedule": {"notBefore": None, "notAfter": None}}, "allowedInput": []}),
    Op("cancel", lambda c: c.cancel_change(10001, 20002), "DELETE", C, MT.format("change-id.v1"), {}, CHANGE_ID),
    Op("schedule", lambda c: c.get_deployment_schedule(10001, 20002), "GET", f"{C}/deployment-schedule",
       MT.format("deployment-schedule.v1"), {}, {"notBefore": None, "notAfter": None}),
    Op("schedule-put", lambda c: c.update_deployment_schedule(10001, 20002, "2030-01-01T00:00:00Z", None),
       "PUT", f"{C}/deployment-schedule", MT.format("change-id.v1"), {}, CHANGE_ID,
       MT.format("deployment-schedule.v1")),
    Op("dv", lambda c: c.get_dv_challenges(10001, 20002), "GET", f"{C}/input/info/lets-encrypt-challenges",
       MT.format("dv-challenges.v2"), {}, {"dv": [{"domain": "a.example.com", "challenges": []}]}),
    Op("dv-ack", lambda c: c.acknowledge_dv_challenges(10001, 20002), "POST",
       f"{C}/input/update/lets-encrypt-challenges-completed", MT.format("change-id.v1"), {}, CHANGE_ID,
       MT.format("acknowledgement.v1")),
    Op("csrs", lambda c: c.get_third_party_csrs(10001, 20002), "GET", f"{C}/input/info/third-party-csr",
       MT.format("csr.v2"), {}, {"csrs": [{"keyAlgorithm": "RSA", "csr": "PEM"}]}),
    Op("upload", lambda c: c.upload_third_party_certificates(10001, 20002, UPLOAD), "POST",
       f"{C}/input/update/third-party-cert-and-trust-chain", MT.format("change-id.v1"), {}, CHANGE_ID,
       MT.format("certificate-and-trust-chain.v2")),
    Op("pre", lambda c: c.get_pre_verification_warnings(10001, 20002), "GET",
       f"{C}/input/info/pre-verification-warnings", MT.format("warnings.v1"), {}, {"warnings": "w"}),
    Op("pre-ack", lambda c: c.acknowledge_pre_verification_warnings(10001, 20002), "POST",
       f"{C}/input/update/pre-verification-warnings-ack", MT.format("change-id.v1"), {}, CHANGE_ID,
       MT.format("acknowledgement.v1")),
    Op("post", lambda c: c.get_post_verification_warnings(10001, 20002), "GET",
       f"{C}/input/info/post-verification-warnings", MT.format("warnings.v1"), {}, {"warnings": "w"}),
    Op("post-deny", lambda c: c.acknowledge_post_verification_warnings(10001, 20002, acknowledge=False), "POST",
       f"{C}/input/update/post-verification-warnings-ack", MT.format("change-id.v1"), {}, CHANGE_ID,
       MT.format("acknowledgement.v1")),
    Op("cm", lambda c: c.get_change_management_info(10001, 20002), "GET", f"{C}/input/info/change-management-info",
       MT.format("change-management-info.v6"), {},
       {"validationResultHash": "abc", "pendingState": {"pendingCertificates": [],
                                                         "pendingNetworkConfiguration": {}}}),
    Op("cm-deployment", lambda c: c.get_change_management_deployment(10001, 20002), "GET",
       f"{C}/input/info/change-management-info", MT.format("deployment.v8"), {}, DEPLOYMENT),
    Op("cm-ack", lambda c: c.acknowledge_change_management(10001, 20002), "POST",
       f"{C}/input/update/change-management-ack", MT.format("change-id.v1"), {}, CHANGE_ID,
       MT.format("acknowledgement.v1")),
    Op("cm-ack-hash", lambda c: c.acknowledge_change_management(10001, 20002, "abc123"), "POST",
       f"{C}/input/update/change-management-ack", MT.format("change-id.v1"), {}, CHANGE_ID,
       MT.format("acknowledgement-with-hash.v1")),
    Op("deployments", lambda c: c.get_deployments(10001), "GET", f"{E}/deployments", MT.format("deployments.v8"), {},
       {"production": DEPLOYMENT, "staging": DEPLOYMENT}),
    Op("production", lambda c: c.get_production_deployment(10001), "GET", f"{E}/deployments/production",
       MT.format("deployment.v8"), {}, DEPLOYMENT),
    Op("staging", lambda c: c.get_staging_deployment(10001), "GET", f"{E}/deployments/staging",
       MT.format("deployment.v8"), {}, DEPLOYMENT),
    Op("change-history", lambda c: c.get_change_history(10001, include_all=True), "GET", f"{E}/history/changes",
       MT.format("change-history.v5"), {"includeAll": "true"}, {"changes": []}),
    Op("cert-history", lambda c: c.get_certificate_history(10001), "GET", f"{E}/history/certificates",
       MT.format("certificate-history.v2"), {}, {"certificates": []}),
    Op("dv-history", lambda c: c.get_dv_history(10001), "GET", f"{E}/dv-history", MT.format("dv-history.v1"), {},
       {"results": []}),
]


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
async def test_operation_wire_contract(op: Op) -> None:
    seen: list[httpx.Request] = []
    lists = {"enrollments": []}  # the create's CN look-up before posting

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if op.name == "create" and request.method == "GET":
            return httpx.Response(200, json=lists, headers={"Content-Type": MT.format("enrollments.v12")})
        if op.name == "update" and request.method == "GET":  # the pending changes before the PUT
            return httpx.Response(200, json={"id": 10001, "pendingChanges": []},
                                  headers={"Content-Type": MT.format("enrollment.v12")})
        return httpx.Response(op.status, json=op.answer, headers={"Content-Type": op.accept})

    async with client_for(handler) as cps:
        result = await op.call(cps)
    request = seen[-1]
    assert request.method == op.method
    assert request.url.path == op.path
    assert request.url.host == CREDS.host and request.url.scheme == "https"
    params = dict(request.url.params)
    assert params.pop("accountSwitchKey") == "1-SWITCH:1-KEY"
    assert params == op.params
    assert request.headers["Accept"] == op.accept
    assert request.headers["Authorization"].startswith("EG1-HMAC-SHA256 client_token=akab-ct-SECRET1;")
    if op.content_type is None:
        assert not request.content and "Content-Type" not in request.headers
    else:
        assert request.headers["Content-Type"] == op.content_type
        validate_request_body(op.content_type, json.loads(request.content))
    assert result is not None


async def test_bodies_carry_what_was_asked() -> None:
    bodies: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        bodies[request.url.path.rsplit("/", 1)[-1]] = json.loads(request.content)
        return httpx.Response(200, json=CHANGE_ID)

    async with client_for(handler) as cps:
        await cps.acknowledge_change_management(10001, 20002, "abc123")
        await cps.acknowledge_post_verification_warnings(10001, 20002, acknowledge=False)
        await cps.upload_third_party_certificates(10001, 20002, UPLOAD)
    assert bodies["change-management-ack"] == {"acknowledgement": "acknowledge", "hash": "abc123"}
    assert bodies["post-verification-warnings-ack"] == {"acknowledgement": "deny"}
    assert bodies["third-party-cert-and-trust-chain"] == {"certificatesAndTrustChains": [
        {"keyAlgorithm": "RSA", "certificate": UPLOAD[0].certificate, "trustChain": UPLOAD[0].trust_chain},
        {"keyAlgorithm": "ECDSA", "certificate": UPLOAD[1].certificate, "trustChain": None}]}


async def test_update_drops_read_only_fields_and_keeps_unknown_ones() -> None:
    sent: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"id": 10001, "pendingChanges": []})
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"enrollment": E, "changes": []})

    as_read = {**dv_body(), "id": 10001, "location": E, "pendingChanges": [], "assignedSlots": [1],
               "productionSlots": [1], "stagingSlots": [1], "maxAllowedSanNames": 100,
               "maxAllowedWildcardSanNames": 100, "autoRenewalStartTime": None}
    async with client_for(handler) as cps:
        await cps.update_enrollment(10001, Enrollment.model_validate(as_read))
        await cps.update_enrollment(10001, {**as_read, "futureField": 1})
    assert sent[0] == dv_body()
    assert sent[1] == {**dv_body(), "futureField": 1}
    validate_request_body(MT.format("enrollment.v12"), sent[0])


async def test_results_are_typed() -> None:
    answers = {C: {"statusInfo": {"state": "awaiting-input", "status": "wait-ack-change-management"},
                   "allowedInput": [{"type": "change-management", "requiredToProceed": True,
                                     "info": f"{C}/input/info/change-management-info",
                                     "update": f"{C}/input/update/change-management-ack"}]},
               f"{C}/input/update/change-management-ack": CHANGE_ID}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answers[request.url.path])

    async with client_for(handler) as cps:
        change = await cps.get_change(10001, 20002)
        ack = await cps.acknowledge_change_management(10001, 20002)
    assert isinstance(change, Change) and change.allowed("change-management") is not None
    assert isinstance(ack, ChangeId) and (ack.enrollment_id, ack.change_id) == (10001, 20002)


async def test_missing_deployment_is_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("staging"):
            return httpx.Response(200, json=DEPLOYMENT)
        return httpx.Response(404, json={"type": "https://x/cps/v2/error-types/not-found", "title": "Not Found",
                                         "detail": "nothing deployed", "instance": "i"})

    async with client_for(handler) as cps:
        assert await cps.get_production_deployment(10001) is None
        assert isinstance(await cps.get_staging_deployment(10001), Deployment)


PROBLEM = {"type": "https://akab.luna.akamaiapis.net/cps/v2/error-types/invalid-enrollment-state",
           "title": "Invalid enrollment state", "detail": "Change is not waiting for this input.",
           "instance": "https://akab.luna.akamaiapis.net/cps/v2/error-types/x?id=0123456789abcdef0123456789abcdef"}


@pytest.mark.parametrize(("status", "cls"), [
    (400, CpsApiError), (401, AuthenticationError), (403, AuthenticationError), (404, NotFound),
    (406, CpsApiError), (409, Conflict), (429, RateLimited), (500, CpsApiError), (503, CpsApiError),
])
async def test_problem_json_becomes_typed_error(status: int, cls: type[CpsApiError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={**PROBLEM, "requestId": "req-1"},
                              headers={"Content-Type": "application/problem+json"})

    async with client_for(handler, retry=RetryPolicy(attempts=1, conflict_attempts=1, sleep=no_sleep)) as cps:
        with pytest.raises(cls) as info:
            await cps.get_enrollment(10001)
    error = info.value
    assert type(error) is cls
    assert (error.status, error.method, error.path) == (status, "GET", E)
    assert error.problem.title == PROBLEM["title"] and error.problem.detail == PROBLEM["detail"]
    assert error.problem.instance == PROBLEM["instance"] and error.problem.type == PROBLEM["type"]
    assert error.request_id == "req-1"
    text = str(error)
    assert PROBLEM["detail"] in text and str(status) in text
    for secret in ("SECRET1", "SECRET2", "SECRET3", "1-SWITCH"):
        assert secret not in text


async def test_non_json_error_body_still_maps() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="<html>gone</html>", headers={"Content-Type": "text/html"})

    async with client_for(handler) as cps:
        with pytest.raises(NotFound):
            await cps.get_change(10001, 20002)


async def test_answer_of_wrong_shape_is_a_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"notAChange": True, "allowedInput": "nope"})

    async with client_for(handler, retry=RetryPolicy(attempts=1, sleep=no_sleep)) as cps:
        with pytest.raises(TransportError, match="does not fit Change"):
            await cps.get_change(10001, 20002)


async def test_list_as_sent_keeps_items_unvalidated_and_checks_only_the_shape() -> None:
    listed = {"enrollments": [{"id": 1, "csr": {"cn": "a.example.com"}, "futureField": [1]},
                              {"location": "/cps/v2/enrollments/2", "csr": "not an object"}]}
    answers = iter([listed, {"enrollments": [1, 2]}, {"nothing": []}])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/cps/v2/enrollments" and request.url.params["contractId"] == "1-AB"
        assert request.headers["Accept"] == MT.format("enrollments.v12")
        return httpx.Response(200, json=next(answers))

    async with client_for(handler, retry=RetryPolicy(attempts=1, sleep=no_sleep)) as cps:
        items = await cps.list_enrollments_wire("ctr_1-AB")
        assert items == listed["enrollments"]  # as sent, unknown fields and all
        assert enrollment_wire(items[0]) == {"id": 1, "csr": {"cn": "a.example.com"}, "futureField": [1]}
        with pytest.raises(TransportError, match="does not fit Enrollment"):
            enrollment_wire(items[1])  # validated when used: the same error list_enrollments gives
        for _ in range(2):
            with pytest.raises(TransportError, match="does not fit Enrollments"):
                await cps.list_enrollments_wire("ctr_1-AB")


async def test_find_by_cn_is_case_insensitive() -> None:
    listed = {"enrollments": [{"id": 1, "csr": {"cn": "WWW.Example.com"}}, {"id": 2, "csr": {"cn": "api.example.com"}},
                              {"id": 3}]}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=listed)

    async with client_for(handler) as cps:
        found = await cps.find_enrollments_by_cn("ctr_C-1", "www.example.COM")
    assert [e.id for e in found] == [1]


async def test_create_result_and_status_links() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"enrollments": []})
        return httpx.Response(202, json=STATUS)

    async with client_for(handler) as cps:
        status = await cps.create_enrollment("ctr_1-AB", dv_body())
    assert isinstance(status, EnrollmentStatus)
    assert (status.enrollment_id, status.change_ids) == (10001, [20002])


async def test_debug_log_names_method_path_status_and_nothing_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"enrollments": []})

    async with client_for(handler) as cps:
        await cps.list_enrollments("1-AB")
    assert "GET /cps/v2/enrollments -> 200" in caplog.text
    assert "accountSwitchKey=<hidden>" in caplog.text  # httpx's own request log, redacted
    for secret in ("SECRET1", "c2VjcmV0U0VDUkVUMg==", "SECRET3", "1-SWITCH", "EG1-HMAC"):
        assert secret not in caplog.text
    assert "SECRET" not in repr(cps)


async def test_verify_accepts_a_ca_bundle_path(tmp_path: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "test root")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    async with CpsClient(CREDS, base_url="https://127.0.0.1:9", verify=str(bundle)) as cps:
        assert cps is not None


@pytest.mark.parametrize(("host", "kwargs", "paced"), [
    ("akab-x.luna.akamaiapis.net", {}, True),
    ("akab-x.luna.akamaiapis.net", {"base_url": "https://127.0.0.1:8443"}, False),
    ("127.0.0.1:8443", {}, False),
    ("localhost:8443", {}, False),
    ("[::1]:8443", {}, False),
    ("akab-x.luna.akamaiapis.net", {"rate_limit": None}, False),
])
async def test_pacing_is_on_only_for_real_cps(host: str, kwargs: dict[str, Any], paced: bool) -> None:
    creds = Credentials(host=host, client_token="t", client_secret="s", access_token="a")
    async with CpsClient(creds, **kwargs) as cps:
        assert (cps._session._pacer.limit is not None) is paced
