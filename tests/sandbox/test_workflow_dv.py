"""DV (Let's Encrypt) changes in the engine, from create to a deployed, real certificate."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.sandbox.engine import Engine
from reconciler.sandbox.problems import ApiProblem

from .test_engine_support import (
    CONTRACT,
    ack,
    assert_valid,
    complete_dv,
    dv_body,
    ids,
    make_engine,
    run_until_input,
    status_of,
)


def _names(pem: str) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )


def _create(engine: Engine, body: dict[str, Any] | None = None) -> tuple[int, int]:
    code, status = engine.create_enrollment(CONTRACT, body or dv_body())
    assert code == 202
    assert_valid("enrollment-status.v1", status)
    return ids(status)


def test_dv_create_to_deployed_with_a_real_certificate() -> None:
    engine = make_engine()
    eid, cid = _create(engine)
    assert (eid, cid) == (10000, 10000)
    assert status_of(engine, eid, cid) == ("pre-verification-safety-checks", "running", [])
    enrollment = assert_valid("enrollment.v12", engine.get_enrollment(eid))
    assert enrollment["pendingChanges"] == [
        {"location": f"/cps/v2/enrollments/{eid}/changes/{cid}", "changeType": "new-certificate"}
    ]
    with pytest.raises(ApiProblem) as missing:
        engine.get_input_info(eid, cid, "lets-encrypt-challenges")
    assert missing.value.status == 404

    assert run_until_input(engine, eid, cid) == (
        "coodinate-domain-validation",
        "awaiting-input",
        ["lets-encrypt-challenges"],
    )
    change = engine.get_change(eid, cid)
    assert change["allowedInput"] == [
        {
            "type": "lets-encrypt-challenges",
            "requiredToProceed": False,
            "info": f"/cps/v2/enrollments/{eid}/changes/{cid}/input/info/lets-encrypt-challenges",
            "update": f"/cps/v2/enrollments/{eid}/changes/{cid}/input/update/lets-encrypt-challenges-completed",
        }
    ]
    challenges = assert_valid("dv-challenges.v2", engine.get_input_info(eid, cid, "lets-encrypt-challenges"))
    assert [d["domain"] for d in challenges["dv"]] == ["www.example.com", "api.example.com"]
    www = challenges["dv"][0]
    assert www["validationStatus"] == "IN_PROGRESS"
    by_type = {c["type"]: c for c in www["challenges"]}
    assert by_type["dns-01"]["fullPath"] == "_acme-challenge.www.example.com."
    assert by_type["dns-01"]["redirectFullPath"] == ""
    token = by_type["http-01"]["token"]
    assert by_type["http-01"]["fullPath"] == f"http://www.example.com/.well-known/acme-challenge/{token}"
    assert by_type["http-01"]["redirectFullPath"].endswith(f"/.well-known/acme-challenge/{token}")
    assert by_type["http-01"]["responseBody"].startswith(token + ".")
    assert len({c["token"] for d in challenges["dv"] for c in d["challenges"]}) == 4  # all fresh
    # The change keeps waiting: trust-ack never validates without the acknowledgement.
    engine.advance(3600)
    assert status_of(engine, eid, cid)[0] == "coodinate-domain-validation"

    ack(engine, eid, cid, "lets-encrypt-challenges-completed")
    assert status_of(engine, eid, cid) == ("coodinate-domain-validation", "running", [])
    assert run_until_input(engine, eid, cid) == ("wait-ack-change-management", "awaiting-input", ["change-management"])
    staging = assert_valid("deployment.v8", engine.get_deployment(eid, "staging"))
    with pytest.raises(ApiProblem) as not_live:
        engine.get_deployment(eid, "production")
    assert not_live.value.status == 404

    info = assert_valid("change-management-info.v6", engine.get_input_info(eid, cid, "change-management-info"))
    assert info["acknowledgementDeadline"] is None  # nothing live yet
    assert info["validationResult"] == {"errors": None, "warnings": []}
    pending = assert_valid(
        "deployment.v8", engine.get_input_info(eid, cid, "change-management-info", shape="deployment")
    )
    assert pending["primaryCertificate"]["certificate"] == staging["primaryCertificate"]["certificate"]
    with pytest.raises(ApiProblem) as bad_hash:
        engine.post_input_update(eid, cid, "change-management-ack", {"acknowledgement": "acknowledge", "hash": "0"})
    assert bad_hash.value.status == 409
    engine.post_input_update(
        eid, cid, "change-management-ack", {"acknowledgement": "acknowledge", "hash": info["validationResultHash"]}
    )
    assert status_of(engine, eid, cid) == ("deploy-production", "running", [])
    assert run_until_input(engine, eid, cid) == ("complete", "completed", [])

    production = assert_valid("deployment.v8", engine.get_deployment(eid, "production"))
    cert = production["primaryCertificate"]
    assert cert["keyAlgorithm"] == "RSA" and cert["signatureAlgorithm"] == "SHA-256"
    assert production["multiStackedCertificates"] == []
    leaf = x509.load_pem_x509_certificate(cert["certificate"].encode())
    assert sorted(_names(cert["certificate"])) == ["api.example.com", "www.example.com"]
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey) and leaf.public_key().key_size == 2048
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(cert["trustChain"].encode()))
    assert cert["expiry"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    net = production["networkConfiguration"]
    assert net["dnsNames"] == ["www.example.com", "api.example.com"]  # SNI-only, clone by default
    assert net["disallowedTlsVersions"] == ["TLSv1", "TLSv1_1"] and net["fipsMode"] is False

    enrollment = assert_valid("enrollment.v12", engine.get_enrollment(eid))
    assert enrollment["pendingChanges"] == []
    assert enrollment["productionSlots"] == enrollment["stagingSlots"] == enrollment["assignedSlots"]
    assert enrollment["autoRenewalStartTime"] is not None
    history = assert_valid("change-history.v5", engine.get_change_history(eid))
    assert [(c["action"], c["status"]) for c in history["changes"]] == [("new-certificate", "completed")]
    assert history["changes"][0]["primaryCertificate"]["csr"].startswith("-----BEGIN CERTIFICATE REQUEST")
    certs = assert_valid("certificate-history.v2", engine.get_certificate_history(eid))
    assert [(c["deploymentStatus"], c["stagingStatus"]) for c in certs["certificates"]] == [("active", "active")]
    dv_history = assert_valid("dv-history.v1", engine.get_dv_history(eid))
    assert {r["domain"] for r in dv_history["results"]} == {"www.example.com", "api.example.com"}
    assert dv_history["results"][0]["domainHistory"][0]["validationStatus"] == "VALIDATED"
    assert_valid("deployments.v8", engine.get_deployments(eid))


def test_without_change_management_the_certificate_goes_straight_to_production() -> None:
    engine = make_engine()
    eid, cid = _create(engine, dv_body(changeManagement=False))
    run_until_input(engine, eid, cid)
    ack(engine, eid, cid, "lets-encrypt-challenges-completed")
    assert run_until_input(engine, eid, cid) == ("complete", "completed", [])


def test_san_change_revalidates_only_new_names_and_asks_about_removed_ones() -> None:
    engine = make_engine()
    eid, cid = _create(engine, dv_body(sans=["api.example.com", "old.example.com"]))
    complete_dv(engine, eid, cid)
    body = engine.get_enrollment(eid)
    body["csr"]["sans"] = ["www.example.com", "api.example.com", "new.example.com"]  # old removed
    code, status = engine.update_enrollment(eid, body)
    assert code == 202
    cid2 = ids(status)[1]
    assert engine.get_enrollment(eid)["pendingChanges"][0]["changeType"] == "modify-san"
    assert run_until_input(engine, eid, cid2) == (
        "wait-review-pre-verification-safety-checks",
        "awaiting-input",
        ["pre-verification-warnings-acknowledgement"],
    )
    warnings = assert_valid("warnings.v1", engine.get_input_info(eid, cid2, "pre-verification-warnings"))
    assert warnings["warnings"].startswith("SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT: ")
    assert "old.example.com" in warnings["warnings"]
    ack(engine, eid, cid2, "pre-verification-warnings-ack")
    challenges = engine.get_input_info(eid, cid2, "lets-encrypt-challenges")["dv"]
    state = {d["domain"]: d["validationStatus"] for d in challenges}
    assert state == {"www.example.com": "VALIDATED", "api.example.com": "VALIDATED", "new.example.com": "IN_PROGRESS"}
    assert next(d for d in challenges if d["domain"] == "api.example.com")["challenges"] == []
    ack(engine, eid, cid2, "lets-encrypt-challenges-completed")
    assert run_until_input(engine, eid, cid2)[0] == "wait-ack-change-management"
    info = assert_valid("change-management-info.v6", engine.get_input_info(eid, cid2, "change-management-info"))
    assert info["acknowledgementDeadline"] is not None  # a certificate is live now
    assert "old.example.com" in info["validationResult"]["warnings"][0]["message"]
    ack(engine, eid, cid2, "change-management-ack")
    run_until_input(engine, eid, cid2)
    live = engine.get_deployment(eid, "production")["primaryCertificate"]["certificate"]
    assert sorted(_names(live)) == ["api.example.com", "new.example.com", "www.example.com"]
    history = engine.get_change_history(eid)["changes"]
    assert [c["action"] for c in history] == ["modify-san", "new-certificate"]
    certs = assert_valid("certificate-history.v2", engine.get_certificate_history(eid))["certificates"]
    assert [c["deploymentStatus"] for c in certs] == ["active", "inactive"]


def test_post_verification_warnings_must_be_acknowledged() -> None:
    engine = make_engine(post_verification_warnings=True)
    eid, cid = _create(engine, dv_body(changeManagement=False))
    run_until_input(engine, eid, cid)
    ack(engine, eid, cid, "lets-encrypt-challenges-completed")
    assert run_until_input(engine, eid, cid) == (
        "wait-review-cert-warning",
        "awaiting-input",
        ["post-verification-warnings-acknowledgement"],
    )
    text = assert_valid("warnings.v1", engine.get_input_info(eid, cid, "post-verification-warnings"))["warnings"]
    assert text.startswith("[WARNINGS]\n")
    ack(engine, eid, cid, "post-verification-warnings-ack")
    assert run_until_input(engine, eid, cid)[0] == "complete"


def test_deny_cancels_the_change_and_restores_the_previous_body() -> None:
    engine = make_engine(pre_verification_warnings=True)
    eid, cid = _create(engine, dv_body(changeManagement=False))
    complete_dv(engine, eid, cid)
    body = engine.get_enrollment(eid)
    body["csr"]["sans"] = [*body["csr"]["sans"], "extra.example.com"]
    cid2 = ids(engine.update_enrollment(eid, body)[1])[1]
    assert run_until_input(engine, eid, cid2)[0] == "wait-review-pre-verification-safety-checks"
    ack(engine, eid, cid2, "pre-verification-warnings-ack", answer="deny")
    assert status_of(engine, eid, cid2) == ("cancelled", "cancelled", [])
    enrollment = engine.get_enrollment(eid)
    assert "extra.example.com" not in enrollment["csr"]["sans"]
    assert enrollment["pendingChanges"] == []
    assert engine.get_change_history(eid)["changes"][0]["status"] == "cancelled"


def test_auto_renewal_opens_a_renewal_change_before_expiry() -> None:
    engine = make_engine()
    eid, cid = _create(engine, dv_body(changeManagement=False))
    complete_dv(engine, eid, cid)
    engine.advance(71 * 86400)  # 90-day certificate, renewal 20 days before expiry
    enrollment = assert_valid("enrollment.v12", engine.get_enrollment(eid))
    assert enrollment["pendingChanges"][0]["changeType"] == "renewal"
    assert enrollment["autoRenewalStartTime"] is None
    renewal = int(enrollment["pendingChanges"][0]["location"].rsplit("/", 1)[1])
    # The earlier validations are older than the reuse window: every name is challenged again.
    challenges = engine.get_input_info(eid, renewal, "lets-encrypt-challenges")["dv"]
    assert {d["validationStatus"] for d in challenges} == {"IN_PROGRESS"}
    assert engine.get_change_history(eid)["changes"][0]["action"] == "renew"


# -- validation policies with real DNS and HTTP servers -------------------------------------------


class _TxtServer:
    """A one-zone UDP DNS server answering TXT queries from a dict (dnspython wire format)."""

    def __init__(self) -> None:
        self.records: dict[str, str] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            value = self.records.get(question.name.to_text())
            if value is not None and question.rdtype == dns.rdatatype.TXT:
                response.answer.append(
                    dns.rrset.from_text(question.name, 60, dns.rdataclass.IN, dns.rdatatype.TXT, f'"{value}"')
                )
            else:
                response.set_rcode(3)  # NXDOMAIN
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def txt_server() -> Iterator[_TxtServer]:
    server = _TxtServer()
    yield server
    server.close()


def test_dns_policy_checks_the_txt_records_for_real(txt_server: _TxtServer) -> None:
    engine = make_engine(validation_policy="dns", dns_resolver=txt_server.address, check_timeout=1.0)
    eid, cid = _create(engine, dv_body(changeManagement=False))
    run_until_input(engine, eid, cid)
    challenges = engine.get_input_info(eid, cid, "lets-encrypt-challenges")["dv"]
    records = {c["fullPath"]: c["responseBody"] for d in challenges for c in d["challenges"] if c["type"] == "dns-01"}
    # Only www is published: the acknowledgement validates www; api's challenge fails (as Let's
    # Encrypt fails an authorisation it was told to check) and api gets a new one.
    txt_server.records["_acme-challenge.www.example.com."] = records["_acme-challenge.www.example.com."]
    ack(engine, eid, cid, "lets-encrypt-challenges-completed")
    state = {d["domain"]: d for d in engine.get_input_info(eid, cid, "lets-encrypt-challenges")["dv"]}
    assert state["www.example.com"]["validationStatus"] == "VALIDATED"
    assert state["api.example.com"]["validationStatus"] == "RESPONSE_ERROR"
    assert "TXT" in state["api.example.com"]["error"] and "New challenges" in state["api.example.com"]["error"]
    fresh = {c["fullPath"]: c["responseBody"] for c in state["api.example.com"]["challenges"] if c["type"] == "dns-01"}
    assert fresh["_acme-challenge.api.example.com."] != records["_acme-challenge.api.example.com."]
    assert {c["status"] for c in state["api.example.com"]["challenges"]} == {"pending"}
    # The failed token never validates, even published late.
    txt_server.records["_acme-challenge.api.example.com."] = records["_acme-challenge.api.example.com."]
    engine.advance(300)
    assert status_of(engine, eid, cid)[:2] == ("coodinate-domain-validation", "awaiting-input")
    # No acknowledgement needed for the new one: the periodic check finds the record by itself.
    txt_server.records["_acme-challenge.api.example.com."] = fresh["_acme-challenge.api.example.com."]
    engine.advance(300)
    assert status_of(engine, eid, cid)[:2] == ("coodinate-domain-validation", "running")
    assert run_until_input(engine, eid, cid)[0] == "complete"


def test_http_policy_fetches_the_token_for_real() -> None:
    served: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = served.get(f"{self.headers['Host']}{self.path}")
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write((body or "").encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        engine = make_engine(validation_policy="http", http_base_url=base, check_timeout=1.0)
        eid, cid = _create(engine, dv_body(sans=[], changeManagement=False))
        run_until_input(engine, eid, cid)
        ack(engine, eid, cid, "lets-encrypt-challenges-completed")
        assert status_of(engine, eid, cid)[:2] == ("coodinate-domain-validation", "awaiting-input")
        domain = engine.get_input_info(eid, cid, "lets-encrypt-challenges")["dv"][0]
        http = next(c for c in domain["challenges"] if c["type"] == "http-01")
        served["www.example.com" + http["fullPath"].split("www.example.com", 1)[1]] = http["responseBody"]
        ack(engine, eid, cid, "lets-encrypt-challenges-completed")
        assert status_of(engine, eid, cid)[:2] == ("coodinate-domain-validation", "running")
        assert run_until_input(engine, eid, cid)[0] == "complete"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_dns_policy_can_read_txt_values_from_a_lookup_function() -> None:
    published: dict[str, list[str]] = {}
    engine = make_engine(validation_policy="dns")
    engine.set_txt_lookup(lambda name: published.get(name, []))
    eid, cid = _create(engine, dv_body(sans=[], changeManagement=False))
    run_until_input(engine, eid, cid)
    ack(engine, eid, cid, "lets-encrypt-challenges-completed")
    assert status_of(engine, eid, cid)[:2] == ("coodinate-domain-validation", "awaiting-input")
    domain = engine.get_input_info(eid, cid, "lets-encrypt-challenges")["dv"][0]
    record = next(c for c in domain["challenges"] if c["type"] == "dns-01")
    published[record["fullPath"]] = ["unrelated", record["responseBody"]]
    ack(engine, eid, cid, "lets-encrypt-challenges-completed")
    assert run_until_input(engine, eid, cid)[0] == "complete"


@pytest.mark.parametrize("fresh", [False, True])
def test_dv_key_reuse_is_a_switch(fresh: bool) -> None:
    engine = make_engine(fresh_dv_keys=fresh)
    keys = []
    for cn in ("one.example.com", "two.example.com"):
        eid, cid = _create(engine, dv_body(cn, [], changeManagement=False))
        run_until_input(engine, eid, cid)
        ack(engine, eid, cid, "lets-encrypt-challenges-completed")
        run_until_input(engine, eid, cid)
        pem = engine.get_deployment(eid, "production")["primaryCertificate"]["certificate"]
        keys.append(x509.load_pem_x509_certificate(pem.encode()).public_key())
    assert (keys[0] != keys[1]) is fresh
