"""Every CPS operation at every media-type version the official definitions declare, driven the
way any other tool would: plain ``requests`` + ``edgegrid-python`` over real HTTPS, no code of ours
on the client side. Each answer must carry the version asked for and validate against that
version's official schema; an undeclared version gets 406 (415 for a request body).

One SandboxServer runs a module-long scenario (a DV enrollment through pre- and post-verification
warnings, challenges and change management; a dual-stack and a single-stack third-party
enrollment uploaded as certificate-and-trust-chain v2 and v1; creates with a body of every
enrollment version); the tests then read the recording.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from akamai.edgegrid import EdgeGridAuth

from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.media import media_type as V
from reconciler.sandbox.testing import SandboxServer
from reconciler.sandbox.versions import schema_version
from tests.sandbox.helpers import dv_body, example, schema_errors, third_party_body


def _v(entity: str, *numbers: int) -> list[str]:
    return [f"{entity}.v{n}" for n in numbers]


# Operation -> the versions it must serve: the union of the headers/ enums, the operation
# definitions (openapi.json and latest-parts/paths) and the published schemas of that entity.
DECLARED: dict[str, list[str]] = {
    "list": _v("enrollments", *range(1, 13)),
    "get": _v("enrollment", *range(1, 13)),
    "create": ["enrollment-status.v1"], "update": ["enrollment-status.v1"], "delete": ["enrollment-status.v1"],
    "change": _v("change", 1, 2, 3, 4, 5),
    "cancel": ["change-id.v1"],
    "schedule-get": ["deployment-schedule.v1"], "schedule-put": ["change-id.v1"],
    "info:pre-verification-warnings": ["warnings.v1"], "info:post-verification-warnings": ["warnings.v1"],
    "info:lets-encrypt-challenges": _v("dv-challenges", 1, 2), "info:third-party-csr": _v("csr", 1, 2),
    "info:change-management-info": _v("change-management-info", 1, 2, 4, 5, 6) + _v("deployment", 3, 6, 7, 8),
    "update:pre-verification-warnings-ack": ["change-id.v1"],
    "update:post-verification-warnings-ack": ["change-id.v1"],
    "update:lets-encrypt-challenges-completed": ["change-id.v1"],
    "update:third-party-cert-and-trust-chain": ["change-id.v1"],
    "update:change-management-ack": ["change-id.v1"],
    "deployments": _v("deployments", *range(1, 9)),
    "production": _v("deployment", 3, 6, 7, 8), "staging": _v("deployment", 3, 6, 7, 8),
    "history-changes": _v("change-history", 1, 2, 3, 4, 5),
    "history-certificates": _v("certificate-history", 1, 2),
    "dv-history": ["dv-history.v1"],
}
# Request bodies: Content-Type versions each write must take.
DECLARED_BODIES: dict[str, list[str]] = {
    "create": _v("enrollment", *range(1, 13)), "update": _v("enrollment", 11, 12, 4, 1),
    "update:third-party-cert-and-trust-chain": _v("certificate-and-trust-chain", 1, 2),
    "update:change-management-ack": ["acknowledgement-with-hash.v1", "acknowledgement.v1"],
}
# The official example enrollment whose request fields a body of each version is made from.
BODY_EXAMPLES = {1: "enrollment.v1.json", 2: "enrollment.v2.json", 3: "enrollment.v3.json",
                 4: "create-enrollment.v4-w-3p-sni-cm.json", 5: "create-enrollment.v4-w-3p-sni-cm.json",
                 6: "create-enrollment.v4-w-3p-sni-cm.json", 7: "enrollment.v7.json", 8: "enrollment.v7.json",
                 9: "create-enrollment.v9.json", 10: "enrollment.v10.json", 11: "enrollment.v11.json",
                 12: "enrollment.v12.json"}
SERVER_FILLED = ("id", "location", "pendingChanges", "autoRenewalStartTime", "maxAllowedSanNames",
                 "maxAllowedWildcardSanNames", "assignedSlots", "productionSlots", "stagingSlots")


@dataclass
class Seen:
    op: str
    version: str
    status: int
    content_type: str
    body: Any


def request_body(n: int, cn: str) -> dict[str, Any]:
    """A create body of ``enrollment.v<n>`` from the official example of that version: server-filled
    fields dropped, the documented example quirks fixed (CPS-API.md section 12), a CN of our own."""
    body: dict[str, Any] = json.loads(json.dumps(example(BODY_EXAMPLES[n])))
    for key in SERVER_FILLED:
        body.pop(key, None)
    if isinstance(body.get("orgId"), str):
        body["orgId"] = int(body["orgId"])
    if n in (4, 5, 6):  # the v4 create example carries a key its own schema does not define
        body.pop("enableMultiStackedCertificates")
    body["csr"]["cn"] = cn
    body["csr"]["sans"] = [cn]
    return body


class Scenario:
    """Walks every operation with requests + edgegrid-python, recording each answer."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        creds = server.credentials
        self.http = requests.Session()
        self.http.auth = EdgeGridAuth(client_token=creds.client_token, client_secret=creds.client_secret,
                                      access_token=creds.access_token)
        self.base = server.base_url
        self.seen: list[Seen] = []
        self.bodies: list[tuple[str, str, int]] = []
        self.ca = CertificateAuthority("Customer CA")

    def send(self, method: str, path: str, accept: str, body: Any = None, content: str | None = None,
             params: dict[str, str] | None = None) -> requests.Response:
        headers = {"Accept": V(accept)}
        data = None
        if body is not None:
            headers["Content-Type"] = V(content or "")
            data = json.dumps(body)
        # verify per request: REQUESTS_CA_BUNDLE would override a Session's verify
        return self.http.request(method, self.base + path, headers=headers, data=data, params=params,
                                 verify=self.server.ca_bundle, timeout=30)

    def call(self, op: str, method: str, path: str, accept: str, body: Any = None, content: str | None = None,
             params: dict[str, str] | None = None) -> Any:
        response = self.send(method, path, accept, body, content, params)
        assert response.status_code < 300, (op, accept, response.status_code, response.text)
        self.seen.append(Seen(op, accept, response.status_code, response.headers.get("content-type", ""),
                              response.json()))
        if content is not None:
            self.bodies.append((op, content, response.status_code))
        return response.json()

    def every(self, op: str, path: str, params: dict[str, str] | None = None) -> None:
        for version in DECLARED[op]:
            self.call(op, "GET", path, version, params=params)

    def follow(self, change: str, upload: str = "certificate-and-trust-chain.v2") -> None:
        """Answer every input the change asks for (reading its info at every version) until it completes."""
        for _ in range(60):
            for version in DECLARED["change"]:
                self.call("change", "GET", change, version)
            status = self.seen[-1].body["statusInfo"]
            if status["state"] in ("completed", "cancelled", "error"):
                assert status["state"] == "completed", status
                return
            for allowed in self.seen[-1].body["allowedInput"]:
                self.give(allowed, change, upload)
            self.server.advance(900)
        raise AssertionError(f"{change} did not complete")

    def give(self, allowed: dict[str, Any], change: str, upload: str) -> None:
        info, update = allowed["info"], allowed["update"]
        segment, update_op = info.rsplit("/", 1)[1], "update:" + update.rsplit("/", 1)[1]
        self.every(f"info:{segment}", info)
        ack = {"acknowledgement": "acknowledge"}
        if segment == "third-party-csr":
            csrs = self.call("info:third-party-csr", "GET", info, "csr.v2")["csrs"]
            signed = []
            for csr in csrs:
                leaf, chain = self.ca.sign_csr(csr["csr"])
                signed.append({"keyAlgorithm": csr["keyAlgorithm"], "certificate": leaf, "trustChain": chain})
            body: Any = ({"certificatesAndTrustChains": signed} if upload.endswith(".v2")
                         else {"certificate": signed[0]["certificate"], "trustChain": signed[0]["trustChain"]})
            self.call(update_op, "POST", update, "change-id.v1", body, upload)
        elif segment == "change-management-info":
            info_v6 = self.call("info:change-management-info", "GET", info, "change-management-info.v6")
            schedule = change + "/deployment-schedule"
            self.call("schedule-get", "GET", schedule, "deployment-schedule.v1")
            self.call("schedule-put", "PUT", schedule, "change-id.v1", {"notBefore": None, "notAfter": None},
                      "deployment-schedule.v1")
            self.every("staging", change.split("/changes/")[0] + "/deployments/staging")
            if upload.endswith(".v1"):  # the older tools' way: no hash
                self.call(update_op, "POST", update, "change-id.v1", ack, "acknowledgement.v1")
            else:
                self.call(update_op, "POST", update, "change-id.v1",
                          {**ack, "hash": info_v6["validationResultHash"]}, "acknowledgement-with-hash.v1")
        else:
            self.call(update_op, "POST", update, "change-id.v1", ack, "acknowledgement.v1")

    def after(self, enrollment: str) -> None:
        for op, path in [("deployments", "/deployments"), ("production", "/deployments/production"),
                         ("staging", "/deployments/staging"), ("history-changes", "/history/changes"),
                         ("history-certificates", "/history/certificates"), ("dv-history", "/dv-history")]:
            self.every(op, enrollment + path)
        self.every("get", enrollment)

    def run(self) -> None:
        status = self.call("create", "POST", "/cps/v2/enrollments", "enrollment-status.v1",
                           dv_body(change_management=True), "enrollment.v12", params={"contractId": "1-DV"})
        enrollment = status["enrollment"]
        self.every("list", "/cps/v2/enrollments", params={"contractId": "1-DV"})
        self.every("get", enrollment)
        self.follow(status["changes"][0])
        self.after(enrollment)
        self.every("list", "/cps/v2/enrollments", params={"contractId": "1-DV"})
        # Edits sent in older versions; the last one opens a change that is cancelled; then delete.
        for version in ("enrollment.v4", "enrollment.v1", "enrollment.v12", "enrollment.v11"):
            current = self.call("get", "GET", enrollment, version)
            current["csr"]["sans"] = [*current["csr"]["sans"], f"api{version.rsplit('.v', 1)[1]}.example.com"]
            for key in SERVER_FILLED:
                current.pop(key, None)
            opened = self.call("update", "PUT", enrollment, "enrollment-status.v1", current, version,
                               params={"allow-cancel-pending-changes": "true"})
        self.call("cancel", "DELETE", opened["changes"][0], "change-id.v1")
        self.call("delete", "DELETE", enrollment, "enrollment-status.v1")

        for contract, dual, upload in (("1-TP", True, "certificate-and-trust-chain.v2"),
                                       ("1-TP1", False, "certificate-and-trust-chain.v1")):
            status = self.call("create", "POST", "/cps/v2/enrollments", "enrollment-status.v1",
                               third_party_body(f"shop.{contract.lower()}.example.com", dual_stack=dual,
                                                change_management=True),
                               "enrollment.v12", params={"contractId": contract})
            self.follow(status["changes"][0], upload)
            self.after(status["enrollment"])

        for n in range(1, 13):
            status = self.call("create", "POST", "/cps/v2/enrollments", "enrollment-status.v1",
                               request_body(n, f"v{n}.example.com"), f"enrollment.v{n}",
                               params={"contractId": f"1-BODY{n}"})
            self.call("get", "GET", status["enrollment"], f"enrollment.v{n}")


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    engine = EngineConfig(create_throttle_seconds=0, pre_verification_warnings=True,
                          post_verification_warnings=True, validation_policy="trust-ack")
    # Unlimited traffic, said explicitly: the scenario is hundreds of requests from a client that,
    # like the ones it stands for, does not pace itself (test_ratelimit.py covers the limits).
    with SandboxServer(engine=engine, rate_limits=()) as server:
        played = Scenario(server)
        played.run()
        yield played


PAIRS = [(op, version) for op, versions in DECLARED.items() for version in versions]


@pytest.mark.parametrize(("op", "version"), PAIRS, ids=[f"{o}-{v}" for o, v in PAIRS])
def test_every_declared_version_answers_its_own_schema(scenario: Scenario, op: str, version: str) -> None:
    answers = [s for s in scenario.seen if s.op == op and s.version == version]
    assert answers, f"the scenario never reached {op} with {version}"
    for answer in answers:
        assert answer.content_type == V(version)
        assert schema_errors(schema_version(version), answer.body) == [], (op, version)


def test_every_declared_request_body_version_is_taken(scenario: Scenario) -> None:
    taken = {(op, version) for op, version, status in scenario.bodies if status < 300}
    for op, versions in DECLARED_BODIES.items():
        for version in versions:
            assert (op, version) in taken, (op, version)


def test_older_versions_carry_their_own_shapes(scenario: Scenario) -> None:
    def bodies(op: str, version: str) -> list[Any]:
        return [s.body for s in scenario.seen if s.op == op and s.version == version]

    deployed_v3 = [b for b in bodies("production", "deployment.v3") if b["certificate"]]
    assert deployed_v3 and all("primaryCertificate" not in b for b in deployed_v3)
    deployed_v1 = [b["production"] for b in bodies("deployments", "deployments.v1") if b["production"]["certificate"]]
    assert deployed_v1 and all(b["networkConfiguration"]["sni"]["dnsNames"] for b in deployed_v1)
    v1 = bodies("get", "enrollment.v1")
    assert v1 and all("sni" in b["networkConfiguration"] and "sniOnly" not in b["networkConfiguration"]
                      and b["networkConfiguration"]["networkType"] == "standard-worldwide" for b in v1)
    assert all(isinstance(p, str) for b in bodies("get", "enrollment.v9") for p in b["pendingChanges"])
    assert all("fipsMode" not in b["networkConfiguration"] for b in bodies("get", "enrollment.v11"))
    assert all("pendingCertificate" in b["pendingState"]
               for b in bodies("info:change-management-info", "change-management-info.v4"))
    csr_v1 = bodies("info:third-party-csr", "csr.v1")
    assert csr_v1 and all(b["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----") for b in csr_v1)
    challenges_v1 = bodies("info:lets-encrypt-challenges", "dv-challenges.v1")
    assert challenges_v1 and all(c["fullPath"].startswith("http://") for b in challenges_v1 for c in b["challenges"])


def test_a_body_of_an_old_version_means_the_same_enrollment(scenario: Scenario) -> None:
    listed = scenario.send("GET", "/cps/v2/enrollments", "enrollments.v12", params={"contractId": "1-BODY1"})
    (v1,) = listed.json()["enrollments"]
    network = v1["networkConfiguration"]
    # enrollment.v1 example: networkType standard-worldwide, sni with two dnsNames, no clone.
    assert (network["geography"], network["sniOnly"]) == ("core", True)
    assert network["dnsNameSettings"] == {"cloneDnsNames": False, "dnsNames": ["san1.example.com", "san2.example.com"]}


@pytest.mark.parametrize(("path", "accept"), [
    ("/cps/v2/enrollments?contractId=1-DV", "enrollments.v13"),
    ("/cps/v2/enrollments?contractId=1-DV", "enrollment.v12"),
    ("/cps/v2/enrollments/10000/deployments/production", "deployment.v5"),
    ("/cps/v2/enrollments/10000/deployments", "deployments.v9"),
    ("/cps/v2/enrollments/10000/history/changes", "change-history.v6"),
])
def test_an_undeclared_version_is_not_acceptable(scenario: Scenario, path: str, accept: str) -> None:
    response = scenario.send("GET", path, accept)
    assert response.status_code == 406, response.text
    assert schema_errors("problem", response.json()) == []


def test_an_undeclared_body_version_is_unsupported(scenario: Scenario) -> None:
    response = scenario.send("POST", "/cps/v2/enrollments", "enrollment-status.v1", dv_body("x.example.com"),
                             "enrollment.v13", params={"contractId": "1-X"})
    assert response.status_code == 415, response.text


def test_contract_api_lists_the_sandbox_contracts_as_akamai_tools_expect(scenario: Scenario) -> None:
    url = scenario.base + "/contract-api/v1/contracts/identifiers"
    verify = scenario.server.ca_bundle
    listed = scenario.http.get(url, verify=verify, timeout=30)
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
    assert {"1-SANDBOX", "1-DV", "1-TP", "1-BODY12"} <= set(listed.json())
    assert all(isinstance(c, str) and not c.startswith("ctr_") for c in listed.json())
    assert scenario.http.get(url, params={"depth": "TOP"}, verify=verify, timeout=30).json() == listed.json()
    assert scenario.http.get(url, params={"depth": "ALL"}, verify=verify, timeout=30).json() == listed.json()
    assert scenario.http.get(url, params={"depth": "SOME"}, verify=verify, timeout=30).status_code == 400
    assert requests.get(url, verify=verify, timeout=30).status_code in (400, 401)  # unsigned: the gateway refuses
