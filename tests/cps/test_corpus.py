"""Every answer shape in ``tests/cps/corpus/`` through the client operation that parses it.

The corpus holds what production CPS really sends (the official examples, shortened, and the
loose answers of issue 23: empty 2xx bodies to writes, booleans and ids as strings, ``null``
lists); see its README. Each case is served by ``httpx.MockTransport`` to the one operation it
answers, and the facts it lists are read back from the typed result. A second test checks that
the corpus reaches every operation the client parses, so a new client method needs a case.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.cps.client import CpsClient, enrollment_wire
from reconciler.cps.credentials import Credentials
from reconciler.cps.models import CertificateAndTrustChain, Enrollment, WireModel
from reconciler.cps.retry import RetryPolicy

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).with_name("corpus")
CREDS = Credentials(host="akab-corpus.luna.akamaiapis.net", client_token="akab-ct", client_secret="c2VjcmV0",
                    access_token="akab-at")
E = "/cps/v2/enrollments/10001"
C = f"{E}/changes/10002"
PEM = "-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n"

Call = Callable[[CpsClient], Awaitable[Any]]


async def _list_wire(cps: CpsClient) -> list[dict[str, Any]]:
    return [enrollment_wire(item) for item in await cps.list_enrollments_wire("ctr_1-AB123")]


# operation -> (the request it answers, the call). Re-reads after an ambiguous write come from
# the case's "reads".
OPERATIONS: dict[str, tuple[str, str, Call]] = {
    "list_enrollments": ("GET", "/cps/v2/enrollments", lambda c: c.list_enrollments("ctr_1-AB123")),
    "list_enrollments_wire": ("GET", "/cps/v2/enrollments", _list_wire),
    "get_enrollment": ("GET", E, lambda c: c.get_enrollment(10001)),
    "create_enrollment": ("POST", "/cps/v2/enrollments", lambda c: c.create_enrollment(
        "ctr_1-AB123", {"csr": {"cn": "new.example.com"}}, same_cn_ids=[])),
    "update_enrollment": ("PUT", E, lambda c: c.update_enrollment(10001, {"csr": {"cn": "www.example.com"}})),
    "delete_enrollment": ("DELETE", E, lambda c: c.delete_enrollment(10001)),
    "get_change": ("GET", C, lambda c: c.get_change(10001, 10002)),
    "cancel_change": ("DELETE", C, lambda c: c.cancel_change(10001, 10002)),
    "get_deployment_schedule": ("GET", f"{C}/deployment-schedule", lambda c: c.get_deployment_schedule(10001, 10002)),
    "update_deployment_schedule": ("PUT", f"{C}/deployment-schedule",
                                   lambda c: c.update_deployment_schedule(10001, 10002, None, None)),
    "get_dv_challenges": ("GET", f"{C}/input/info/lets-encrypt-challenges",
                          lambda c: c.get_dv_challenges(10001, 10002)),
    "acknowledge_dv_challenges": ("POST", f"{C}/input/update/lets-encrypt-challenges-completed",
                                  lambda c: c.acknowledge_dv_challenges(10001, 10002)),
    "get_third_party_csrs": ("GET", f"{C}/input/info/third-party-csr", lambda c: c.get_third_party_csrs(10001, 10002)),
    "upload_third_party_certificates": ("POST", f"{C}/input/update/third-party-cert-and-trust-chain",
                                        lambda c: c.upload_third_party_certificates(10001, 10002, [
                                            CertificateAndTrustChain(key_algorithm="RSA", certificate=PEM)])),
    "get_pre_verification_warnings": ("GET", f"{C}/input/info/pre-verification-warnings",
                                      lambda c: c.get_pre_verification_warnings(10001, 10002)),
    "acknowledge_pre_verification_warnings": ("POST", f"{C}/input/update/pre-verification-warnings-ack",
                                              lambda c: c.acknowledge_pre_verification_warnings(10001, 10002)),
    "get_post_verification_warnings": ("GET", f"{C}/input/info/post-verification-warnings",
                                       lambda c: c.get_post_verification_warnings(10001, 10002)),
    "acknowledge_post_verification_warnings": ("POST", f"{C}/input/update/post-verification-warnings-ack",
                                               lambda c: c.acknowledge_post_verification_warnings(10001, 10002)),
    "get_change_management_info": ("GET", f"{C}/input/info/change-management-info",
                                   lambda c: c.get_change_management_info(10001, 10002)),
    "get_change_management_deployment": ("GET", f"{C}/input/info/change-management-info",
                                         lambda c: c.get_change_management_deployment(10001, 10002)),
    "acknowledge_change_management": ("POST", f"{C}/input/update/change-management-ack",
                                      lambda c: c.acknowledge_change_management(10001, 10002, "da39a3ee")),
    "get_deployments": ("GET", f"{E}/deployments", lambda c: c.get_deployments(10001)),
    "get_production_deployment": ("GET", f"{E}/deployments/production",
                                  lambda c: c.get_production_deployment(10001)),
    "get_staging_deployment": ("GET", f"{E}/deployments/staging", lambda c: c.get_staging_deployment(10001)),
    "get_change_history": ("GET", f"{E}/history/changes", lambda c: c.get_change_history(10001)),
    "get_certificate_history": ("GET", f"{E}/history/certificates", lambda c: c.get_certificate_history(10001)),
    "get_dv_history": ("GET", f"{E}/dv-history", lambda c: c.get_dv_history(10001)),
}

CASES = sorted(CORPUS.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _response(status: int, body: Any) -> httpx.Response:
    if body is None:
        return httpx.Response(status)
    problem = status >= 400
    media = "application/problem+json" if problem else "application/json"
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"Content-Type": media})


_STEP = re.compile(r"\.?([A-Za-z_]\w*)|\[(\d+)\]")


def _read(value: Any, path: str) -> Any:
    """``a.b[0].c`` out of models (attributes and properties), dicts and lists."""
    for name, index in _STEP.findall(path):
        if index:
            value = value[int(index)]
        elif isinstance(value, dict):
            value = value[name]
        else:
            value = getattr(value, name)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, WireModel):
        return value.to_wire()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


async def _run(case: dict[str, Any]) -> tuple[Any, list[tuple[str, str]]]:
    method, path, call = OPERATIONS[case["operation"]]
    answer = case["answer"]
    reads = [dict(r) for r in case.get("reads", [])]
    seen: list[tuple[str, str]] = []
    answered = False

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal answered
        seen.append((request.method, request.url.path))
        if not answered and (request.method, request.url.path) == (method, path):
            answered = True
            return _response(answer["status"], answer["body"])
        for i, read in enumerate(reads):
            if (read["method"], read["path"]) == (request.method, request.url.path):
                reads.pop(i)
                return _response(200, read["body"])
        raise AssertionError(f"unexpected request {request.method} {request.url.path}")

    async def no_sleep(_: float) -> None:
        return None

    async with CpsClient(CREDS, transport=httpx.MockTransport(handler),
                         retry=RetryPolicy(sleep=no_sleep)) as cps:
        result = await call(cps)
    assert answered, f"the operation never sent {method} {path}"
    assert not reads, f"re-reads the case expected were not made: {reads}"
    return result, seen


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
async def test_corpus_answer_parses_and_reads_back(path: Path) -> None:
    case = _load(path)
    assert case["operation"] in OPERATIONS, f"{path.name}: unknown operation {case['operation']!r}"
    result, _ = await _run(case)
    for where, expected in case["expect"].items():
        got = result if where == "" else _read(result, where)
        assert _plain(got) == expected, f"{path.name}: {where}"


def test_the_corpus_covers_every_operation_the_client_parses() -> None:
    covered = {_load(p)["operation"] for p in CASES}
    assert covered == set(OPERATIONS)
    public = {name for name in vars(CpsClient) if not name.startswith("_")} - {"aclose", "stats", "cps_now",
                                                                               "find_enrollments_by_cn"}
    assert public == set(OPERATIONS), "a client operation without a corpus case (or a case for a removed one)"


@pytest.mark.parametrize("operation", ["acknowledge_dv_challenges", "upload_third_party_certificates",
                                       "acknowledge_pre_verification_warnings",
                                       "acknowledge_post_verification_warnings", "acknowledge_change_management"])
async def test_every_input_update_takes_an_empty_204(operation: str) -> None:
    result, seen = await _run({"operation": operation, "answer": {"status": 204, "body": None}})
    assert result.change == C
    assert len(seen) == 1, "an input update CPS took is not sent again"


def test_an_enrollment_read_loosely_is_echoed_as_sent() -> None:
    sent = _load(CORPUS / "list-v11-string-ids-and-cps-api-links.json")["answer"]["body"]["enrollments"][0]
    enrollment = Enrollment.model_validate(sent)
    assert enrollment.enrollment_id == 10001 and enrollment.org_id == "12345"
    assert enrollment.echo() == sent
    loose = _load(CORPUS / "list-string-booleans-and-no-id.json")["answer"]["body"]["enrollments"][0]
    read = Enrollment.model_validate(loose)
    assert read.to_wire()["networkConfiguration"]["sniOnly"] is True  # normalised for reading and diffing
    assert read.echo() == loose  # as sent for passing back
    assert read.network_configuration is not None
    read.network_configuration.quic_enabled = True
    read.change_management = True
    echoed = read.echo()
    assert echoed["changeManagement"] is True and echoed["networkConfiguration"]["quicEnabled"] is True
    assert echoed["networkConfiguration"]["sniOnly"] == "true"
    assert echoed["enableMultiStackedCertificates"] == "false"


async def test_a_put_of_an_enrollment_read_from_cps_sends_its_values_as_sent() -> None:
    loose = _load(CORPUS / "list-string-booleans-and-no-id.json")["answer"]["body"]["enrollments"][0]
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return _response(200, {"id": 20001, "pendingChanges": []})
        sent.append(json.loads(request.content))
        return _response(200, {"enrollment": "/cps/v2/enrollments/20001", "changes": []})

    async with CpsClient(CREDS, transport=httpx.MockTransport(handler)) as cps:
        await cps.update_enrollment(20001, Enrollment.model_validate(loose))
    assert sent[0]["networkConfiguration"]["sniOnly"] == "true"
    assert "location" not in sent[0] and "pendingChanges" not in sent[0]


@pytest.mark.parametrize("status", ["pending", "Pending", "PENDING"])
def test_challenges_to_publish_are_found_whatever_the_case_of_their_status(status: str) -> None:
    from reconciler.apply.dv_step import challenge_records
    from reconciler.cps.models import DvChallenges

    case = _load(CORPUS / "dv-challenges-v2-lowercase.json")["answer"]["body"]
    for challenge in case["dv"][0]["challenges"]:
        challenge["status"] = status
    records = challenge_records("www", DvChallenges.model_validate(case), "dns-01")
    assert [r.record_name for r in records] == ["_acme-challenge.www.example.com."]
    case["dv"][0]["challenges"][1]["status"] = "Valid" if status[0].isupper() else "valid"
    assert challenge_records("www", DvChallenges.model_validate(case), "dns-01") == []
