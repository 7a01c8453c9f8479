"""Every CPS route, in every media version the sandbox serves, answers documents that validate
against Akamai's official schemas; errors validate against the problem schema; the shipped
request examples are accepted.

One in-process sandbox runs a scenario per module (a DV enrollment with every acknowledgement
step, a dual-stack third-party enrollment, updates, cancel, delete), recording each response;
the tests then check the recording.
"""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import dataclass
from typing import Any

import pytest

from reconciler.sandbox.app import SandboxApp, create_app
from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.media import media_type as V
from reconciler.sandbox.schemas import validate_request
from tests.sandbox.helpers import drive, dv_body, example, schema_errors, signed_client, third_party_body


@dataclass
class Seen:
    op: str
    version: str
    status: int
    content_type: str
    body: Any


# (operation, served version) pairs every route must have answered with a 2xx.
EXPECTED = [
    ("list", "enrollments.v11"), ("list", "enrollments.v12"),
    ("create", "enrollment-status.v1"), ("get", "enrollment.v11"), ("get", "enrollment.v12"),
    ("update", "enrollment-status.v1"), ("delete", "enrollment-status.v1"),
    ("change", "change.v1"), ("change", "change.v2"), ("cancel", "change-id.v1"),
    ("schedule-get", "deployment-schedule.v1"), ("schedule-put", "change-id.v1"),
    ("info:pre-verification-warnings", "warnings.v1"), ("info:lets-encrypt-challenges", "dv-challenges.v2"),
    ("info:post-verification-warnings", "warnings.v1"), ("info:third-party-csr", "csr.v2"),
    ("info:change-management-info", "change-management-info.v5"),
    ("info:change-management-info", "change-management-info.v6"),
    ("info:change-management-info", "deployment.v7"), ("info:change-management-info", "deployment.v8"),
    ("update:pre-verification-warnings-ack", "change-id.v1"),
    ("update:lets-encrypt-challenges-completed", "change-id.v1"),
    ("update:post-verification-warnings-ack", "change-id.v1"),
    ("update:third-party-cert-and-trust-chain", "change-id.v1"),
    ("update:change-management-ack", "change-id.v1"),
    ("deployments", "deployments.v7"), ("deployments", "deployments.v8"),
    ("production", "deployment.v7"), ("production", "deployment.v8"),
    ("staging", "deployment.v7"), ("staging", "deployment.v8"),
    ("history-changes", "change-history.v5"), ("history-certificates", "certificate-history.v2"),
    ("dv-history", "dv-history.v1"),
]

INFO_VERSIONS = {
    "pre-verification-warnings": ["warnings.v1"], "post-verification-warnings": ["warnings.v1"],
    "lets-encrypt-challenges": ["dv-challenges.v2"], "third-party-csr": ["csr.v2"],
    "change-management-info": ["change-management-info.v5", "change-management-info.v6", "deployment.v7",
                               "deployment.v8"],
}
UPDATE_SEGMENT = {
    "pre-verification-warnings-acknowledgement": "pre-verification-warnings-ack",
    "post-verification-warnings-acknowledgement": "post-verification-warnings-ack",
    "lets-encrypt-challenges": "lets-encrypt-challenges-completed",
}


def served_enrollment(sample: dict[str, Any], version: str) -> dict[str, Any]:
    """An enrollment example reshaped as a request of a served version.

    Server-filled fields go (older versions shape them differently), the v4 ``sni`` object
    becomes ``sniOnly`` + ``dnsNameSettings``, ``quicEnabled`` (required since) is added, and the
    documented example quirk ``orgId`` as a string (CPS-API.md section 12) is made an integer.
    """
    body = copy.deepcopy(sample)
    for server_filled in ("id", "location", "pendingChanges", "autoRenewalStartTime", "maxAllowedSanNames",
                          "maxAllowedWildcardSanNames", "assignedSlots", "productionSlots", "stagingSlots"):
        body.pop(server_filled, None)
    network = body["networkConfiguration"]
    if "sni" in network:
        sni = network.pop("sni")
        network["sniOnly"] = sni is not None
        network["dnsNameSettings"] = sni
    network.setdefault("quicEnabled", False)
    if version == "enrollment.v11":
        network.pop("fipsMode", None)
    if isinstance(body.get("orgId"), str):
        body["orgId"] = int(body["orgId"])
    return body


class Scenario:
    """Drives the sandbox through every route, recording what it answered."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        self.seen: list[Seen] = []
        self.client = signed_client(app)
        self.customer_ca = CertificateAuthority("Customer CA")

    async def call(self, op: str, method: str, url: str, version: str, body: Any = None,
                   content: str | None = None, params: dict[str, str] | None = None) -> Any:
        headers = {"Accept": V(version)}
        data = None
        if body is not None:
            headers["Content-Type"] = V(content or "")
            data = json.dumps(body)
        response = await self.client.request(method, url, headers=headers, content=data, params=params)
        self.seen.append(Seen(op, version, response.status_code, response.headers.get("content-type", ""),
                              response.json()))
        assert response.status_code < 300, (op, version, response.status_code, response.text)
        return response.json()

    async def advance(self, seconds: float) -> None:
        self.app.runtime.advance(seconds)

    async def every_version(self, op: str, url: str, versions: list[str]) -> None:
        for version in versions:
            await self.call(op, "GET", url, version)

    async def handle(self, allowed: dict[str, Any]) -> bool:
        kind, info, update = allowed["type"], allowed["info"], allowed["update"]
        segment = info.rsplit("/", 1)[1]
        await self.every_version(f"info:{segment}", info, INFO_VERSIONS[segment])
        change = info.split("/input/")[0]
        await self.call("change", "GET", change, "change.v1")
        if kind in UPDATE_SEGMENT:
            await self.call(f"update:{UPDATE_SEGMENT[kind]}", "POST", update, "change-id.v1",
                            example("acknowledgement.v1-acknowledge.json"), "acknowledgement.v1")
        elif kind == "third-party-certificate":
            csrs = await self.call("info:third-party-csr", "GET", info, "csr.v2")
            signed = []
            for csr in csrs["csrs"]:
                leaf, chain = self.customer_ca.sign_csr(csr["csr"])
                signed.append({"keyAlgorithm": csr["keyAlgorithm"], "certificate": leaf,
                               "trustChain": chain + self.customer_ca.root_pem})
            await self.call("update:third-party-cert-and-trust-chain", "POST", update, "change-id.v1",
                            {"certificatesAndTrustChains": signed}, "certificate-and-trust-chain.v2")
        elif kind == "change-management":
            cmi = await self.call("info:change-management-info", "GET", info, "change-management-info.v6")
            schedule = change + "/deployment-schedule"
            await self.call("schedule-get", "GET", schedule, "deployment-schedule.v1")
            await self.call("schedule-put", "PUT", schedule, "change-id.v1",
                            {"notBefore": None, "notAfter": None}, "deployment-schedule.v1")
            enrollment = change.split("/changes/")[0]
            await self.every_version("staging", enrollment + "/deployments/staging", ["deployment.v7", "deployment.v8"])
            await self.call("update:change-management-ack", "POST", update, "change-id.v1",
                            {"acknowledgement": "acknowledge", "hash": cmi["validationResultHash"]},
                            "acknowledgement-with-hash.v1")
        else:
            raise AssertionError(f"unexpected input {kind}")
        return True

    async def run(self) -> None:
        async with self.client:
            await self.dv()
            await self.third_party()
            await self.examples()

    async def dv(self) -> None:
        status = await self.call("create", "POST", "/cps/v2/enrollments", "enrollment-status.v1",
                                 dv_body(change_management=True), "enrollment.v12", params={"contractId": "1-DV"})
        enrollment, change = status["enrollment"], status["changes"][0]
        await self.every_version("list", "/cps/v2/enrollments?contractId=1-DV", ["enrollments.v11", "enrollments.v12"])
        await self.every_version("get", enrollment, ["enrollment.v11", "enrollment.v12"])
        await drive(self.client, change, self.advance, self.handle)
        for op, path, versions in [
            ("deployments", "/deployments", ["deployments.v7", "deployments.v8"]),
            ("production", "/deployments/production", ["deployment.v7", "deployment.v8"]),
            ("staging", "/deployments/staging", ["deployment.v7", "deployment.v8"]),
            ("history-changes", "/history/changes?includeAll=true", ["change-history.v5"]),
            ("history-certificates", "/history/certificates", ["certificate-history.v2"]),
            ("dv-history", "/dv-history", ["dv-history.v1"]),
        ]:
            await self.every_version(op, enrollment + path, versions)
        await self.every_version("change", change, ["change.v1", "change.v2"])
        # A SAN change sent as v11, cancelled, then the enrollment deleted while deployed.
        current = await self.call("get", "GET", enrollment, "enrollment.v11")
        current["csr"]["sans"].append("api.example.com")
        update = await self.call("update", "PUT", enrollment, "enrollment-status.v1", current, "enrollment.v11")
        await self.call("cancel", "DELETE", update["changes"][0], "change-id.v1")
        await self.call("delete", "DELETE", enrollment, "enrollment-status.v1")

    async def third_party(self) -> None:
        body = served_enrollment(third_party_body(), "enrollment.v11")
        status = await self.call("create", "POST", "/cps/v2/enrollments", "enrollment-status.v1", body,
                                 "enrollment.v11", params={"contractId": "1-TP"})
        await drive(self.client, status["changes"][0], self.advance, self.handle)
        for op, path, versions in [("deployments", "/deployments", ["deployments.v7", "deployments.v8"]),
                                   ("production", "/deployments/production", ["deployment.v7", "deployment.v8"])]:
            await self.every_version(op, status["enrollment"] + path, versions)

    async def examples(self) -> None:
        for index, (name, version) in enumerate([
            ("enrollment.v12.json", "enrollment.v12"), ("enrollment.v11.json", "enrollment.v11"),
            ("enrollment.v11.json", "enrollment.v12"), ("create-enrollment.v9.json", "enrollment.v11"),
            ("create-enrollment.v4-w-3p-sni-cm.json", "enrollment.v12"),
        ]):
            await self.call("create", "POST", "/cps/v2/enrollments", "enrollment-status.v1",
                            served_enrollment(example(name), version), version,
                            params={"contractId": f"1-EX{index}"})
        created = self.seen[-1].body
        edited = served_enrollment(example("update-enrollment.v4-w-3p-sni-cm.json"), "enrollment.v12")
        await self.call("update", "PUT", created["enrollment"] + "?allow-cancel-pending-changes=true",
                        "enrollment-status.v1", edited, "enrollment.v12")


@pytest.fixture(scope="module")
def seen() -> list[Seen]:
    engine = EngineConfig(create_throttle_seconds=0, pre_verification_warnings=True, post_verification_warnings=True,
                          validation_policy="trust-ack")  # the scenario validates by acknowledging
    scenario = Scenario(create_app(SandboxConfig(engine=engine)))
    asyncio.run(scenario.run())
    return scenario.seen


@pytest.mark.parametrize(("op", "version"), EXPECTED, ids=[f"{o}-{v}" for o, v in EXPECTED])
def test_route_answers_the_official_schema(seen: list[Seen], op: str, version: str) -> None:
    answers = [s for s in seen if s.op == op and s.version == version]
    assert answers, f"the scenario never reached {op} with {version}"
    for answer in answers:
        assert answer.content_type == V(version)
        assert schema_errors(version, answer.body) == []


def test_down_converted_versions_really_lack_fips_mode(seen: list[Seen]) -> None:
    v11 = [s.body for s in seen if s.version == "enrollment.v11" and s.op == "get"]
    v12 = [s.body for s in seen if s.version == "enrollment.v12" and s.op == "get"]
    assert v11 and all("fipsMode" not in b["networkConfiguration"] for b in v11)
    assert v12 and all("fipsMode" in b["networkConfiguration"] for b in v12)


@pytest.mark.parametrize("name,version", [
    ("acknowledgement.v1-acknowledge.json", "acknowledgement.v1"),
    ("acknowledgement-with-hash.v1-acknowledge.json", "acknowledgement-with-hash.v1"),
    ("deployment-schedule.v1.json", "deployment-schedule.v1"),
    ("certificate-and-trust-chain.v2-3p.json", "certificate-and-trust-chain.v2"),
    ("enrollment.v12.json", "enrollment.v12"),
])
def test_request_examples_of_served_versions_pass_request_validation(name: str, version: str) -> None:
    assert validate_request(version, example(name)) is None
