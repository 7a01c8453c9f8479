"""Every CpsClient operation over real HTTPS sockets against the sandbox (uvicorn in a thread),
signed with EdgeGrid and verified against the sandbox's own CA. Workflows move on the sandbox's
virtual clock, never by sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509

pytest.importorskip("reconciler.sandbox.testing")

from reconciler.cps.client import CpsClient  # noqa: E402
from reconciler.cps.credentials import Credentials  # noqa: E402
from reconciler.cps.models import CertificateAndTrustChain, Change  # noqa: E402
from reconciler.cps.retry import RetryPolicy  # noqa: E402
from reconciler.errors import AuthenticationError, Conflict, NotFound, TransportError  # noqa: E402
from reconciler.sandbox.ca import CertificateAuthority  # noqa: E402
from reconciler.sandbox.engine_config import EngineConfig  # noqa: E402
from reconciler.sandbox.testing import SandboxServer  # noqa: E402
from tests.sandbox.helpers import publish_in_edge_dns  # noqa: E402

from .conftest import dv_body, third_party_body  # noqa: E402

pytestmark = pytest.mark.anyio

CONTRACT = "ctr_1-SANDBOX"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A sandbox that stops at every optional step, so that every input operation is exercised."""
    engine = EngineConfig(create_throttle_seconds=0, pre_verification_warnings=True,
                          post_verification_warnings=True)
    with SandboxServer(engine=engine) as server:
        yield server


def connect(server: SandboxServer, credentials: Credentials | None = None, **kwargs: Any) -> CpsClient:
    return CpsClient(credentials or server.credentials, base_url=server.base_url, verify=server.ca_bundle,
                     **kwargs)


async def status_of(cps: CpsClient, eid: int, cid: int) -> tuple[str | None, str | None, list[str]]:
    change: Change = await cps.get_change(eid, cid)
    return change.state, change.status, [a.type for a in change.allowed_input]


async def test_dv_workflow_end_to_end(sandbox: SandboxServer) -> None:
    names = ["www.example.com", "example.com"]
    async with connect(sandbox) as cps:
        assert await cps.list_enrollments(CONTRACT) == []
        created = await cps.create_enrollment(CONTRACT, dv_body(names[0], names, changeManagement=True))
        eid, (cid,) = created.enrollment_id, created.change_ids

        enrollment = await cps.get_enrollment(eid)
        assert enrollment.id == eid and enrollment.csr is not None and enrollment.csr.cn == names[0]
        assert enrollment.pending_change_ids == [cid]
        assert [e.id for e in await cps.find_enrollments_by_cn(CONTRACT, "WWW.EXAMPLE.COM")] == [eid]
        assert (await cps.get_change(eid, cid)).state == "running"

        sandbox.advance(180)
        assert await status_of(cps, eid, cid) == (
            "awaiting-input", "wait-review-pre-verification-safety-checks",
            ["pre-verification-warnings-acknowledgement"])
        assert (await cps.get_pre_verification_warnings(eid, cid)).lines
        assert (await cps.acknowledge_pre_verification_warnings(eid, cid)).change_id == cid

        state, status, allowed = await status_of(cps, eid, cid)
        assert (state, status, allowed) == ("awaiting-input", "coodinate-domain-validation",
                                             ["lets-encrypt-challenges"])
        challenges = await cps.get_dv_challenges(eid, cid)
        assert sorted(d.domain or "" for d in challenges.dv) == sorted(names)
        for domain in challenges.dv:
            types = {c.type: c for c in domain.challenges}
            assert types["dns-01"].full_path == f"_acme-challenge.{domain.domain}."
            assert types["dns-01"].response_body
            assert types["http-01"].token and types["http-01"].response_body
        publish_in_edge_dns(sandbox, challenges)
        assert (await cps.acknowledge_dv_challenges(eid, cid)).change_id == cid  # the sandbox looks: found

        sandbox.advance(120)
        assert (await status_of(cps, eid, cid))[1] == "wait-review-cert-warning"
        assert (await cps.get_post_verification_warnings(eid, cid)).warnings
        await cps.acknowledge_post_verification_warnings(eid, cid)

        sandbox.advance(1800)
        assert (await status_of(cps, eid, cid))[1:] == ("wait-ack-change-management", ["change-management"])
        info = await cps.get_change_management_info(eid, cid)
        assert info.validation_result_hash and info.pending_state is not None
        staged = await cps.get_change_management_deployment(eid, cid)
        assert staged.primary_certificate is not None and staged.primary_certificate.certificate
        assert (await cps.get_staging_deployment(eid)) is not None
        assert await cps.get_production_deployment(eid) is None
        await cps.acknowledge_change_management(eid, cid, info.validation_result_hash)

        sandbox.advance(3600)
        assert (await status_of(cps, eid, cid))[:2] == ("completed", "complete")
        production = await cps.get_production_deployment(eid)
        assert production is not None and production.primary_certificate is not None
        leaf = x509.load_pem_x509_certificate((production.primary_certificate.certificate or "").encode())
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)
        deployments = await cps.get_deployments(eid)
        assert deployments.production is not None and deployments.staging is not None
        assert (await cps.get_enrollment(eid)).pending_change_ids == []

        history = await cps.get_change_history(eid)
        assert [(c.action, c.status) for c in history.changes] == [("new-certificate", "completed")]
        assert (await cps.get_certificate_history(eid, include_all=True)).certificates
        dv_history = await cps.get_dv_history(eid)
        assert sorted(r.domain or "" for r in dv_history.results) == sorted(names)
        assert cps.stats.retries == 0
        assert dict(cps.stats.by_status) == {200: cps.stats.requests - 2, 202: 1, 404: 1}  # 404: production, early


async def test_third_party_workflow_end_to_end(sandbox: SandboxServer) -> None:
    customer_ca = CertificateAuthority("Customer test CA")
    async with connect(sandbox) as cps:
        created = await cps.create_enrollment(CONTRACT, third_party_body("shop.example.com",
                                                                         ["shop.example.com", "cdn.example.com"]))
        eid, (cid,) = created.enrollment_id, created.change_ids
        sandbox.advance(60)
        await cps.acknowledge_pre_verification_warnings(eid, cid)
        assert (await status_of(cps, eid, cid))[1:] == ("wait-upload-third-party", ["third-party-certificate"])

        csrs = await cps.get_third_party_csrs(eid, cid)
        assert sorted(c.key_algorithm or "" for c in csrs.csrs) == ["ECDSA", "RSA"]
        signed = []
        for item in csrs.csrs:
            request = x509.load_pem_x509_csr(item.csr.encode())
            assert request.is_signature_valid
            # one extra name on the RSA certificate: CPS accepts it with a warning to acknowledge
            extra = ["shop.example.com", "cdn.example.com", "extra.example.com"] if item.key_algorithm == "RSA" else None
            leaf, chain = customer_ca.sign_csr(item.csr, sans=extra)
            signed.append(CertificateAndTrustChain(key_algorithm=item.key_algorithm or "", certificate=leaf,
                                                   trust_chain=chain))
        assert (await cps.upload_third_party_certificates(eid, cid, signed)).change_id == cid

        sandbox.advance(60)
        assert (await status_of(cps, eid, cid))[1:] == ("wait-review-third-party-cert",
                                                        ["post-verification-warnings-acknowledgement"])
        assert "extra.example.com" in str((await cps.get_post_verification_warnings(eid, cid)).warnings)
        await cps.acknowledge_post_verification_warnings(eid, cid)
        sandbox.advance(1800)
        assert (await status_of(cps, eid, cid))[1] == "wait-ack-change-management"
        await cps.acknowledge_change_management(eid, cid)  # no hash: acknowledgement.v1
        sandbox.advance(3600)
        assert (await status_of(cps, eid, cid))[0] == "completed"

        production = await cps.get_production_deployment(eid)
        assert production is not None
        assert sorted(c.key_algorithm or "" for c in production.certificates) == ["ECDSA", "RSA"]
        uploaded = {c.key_algorithm: c.certificate for c in signed}
        for cert in production.certificates:
            assert (x509.load_pem_x509_certificate((cert.certificate or "").encode())
                    == x509.load_pem_x509_certificate((uploaded[cert.key_algorithm] or "").encode()))


async def test_update_schedule_cancel_and_delete(sandbox: SandboxServer) -> None:
    async with connect(sandbox) as cps:
        created = await cps.create_enrollment(CONTRACT, dv_body("api.example.com"))
        eid, (cid,) = created.enrollment_id, created.change_ids

        schedule = await cps.get_deployment_schedule(eid, cid)
        assert schedule.not_before is None and schedule.not_after is None
        moved = await cps.update_deployment_schedule(eid, cid, "2031-01-01T00:00:00Z", None)
        assert moved.change_id == cid
        assert (await cps.get_deployment_schedule(eid, cid)).not_before is not None

        wider = dv_body("api.example.com", ["api.example.com", "api2.example.com"])
        with pytest.raises(Conflict) as refused:
            await cps.update_enrollment(eid, wider)
        assert refused.value.status == 409 and refused.value.problem.type
        replaced = await cps.update_enrollment(eid, wider, allow_cancel_pending_changes=True)
        (new_cid,) = replaced.change_ids
        assert new_cid != cid and (await cps.get_change(eid, cid)).state == "cancelled"

        echoed = await cps.get_enrollment(eid)
        assert echoed.csr is not None and "api2.example.com" in (echoed.csr.sans or [])
        cancelled = await cps.cancel_change(eid, new_cid)
        assert cancelled.change_id == new_cid
        assert (await cps.get_change(eid, new_cid)).state == "cancelled"
        assert (await cps.get_enrollment(eid)).pending_change_ids == []
        history = await cps.get_change_history(eid, include_all=True)
        assert {c.status for c in history.changes} == {"cancelled"}

        # what was read, echoed back with one contact edit (read-only fields and all), is a valid
        # update that opens no change
        contact_only = (await cps.get_enrollment(eid)).to_wire()
        contact_only["techContact"]["phone"] = "+1-617-555-0199"
        unchanged = await cps.update_enrollment(eid, contact_only)
        assert unchanged.changes == []
        assert (await cps.get_enrollment(eid)).tech_contact.phone == "+1-617-555-0199"  # type: ignore[union-attr]

        deleted = await cps.delete_enrollment(eid)
        assert deleted.enrollment_id == eid
        with pytest.raises(NotFound) as gone:
            await cps.get_enrollment(eid)
        problem = gone.value.problem
        assert problem.type and problem.type.endswith("/cps/v2/error-types/not-found")
        assert problem.title and problem.instance


async def test_wrong_secret_is_refused_once_and_named_without_secrets(sandbox: SandboxServer) -> None:
    good = sandbox.credentials
    bad = Credentials(host=good.host, client_token=good.client_token, client_secret="d3Jvbmctc2VjcmV0",
                      access_token=good.access_token)
    sandbox.clear_requests()
    async with connect(sandbox, bad) as cps:
        with pytest.raises(AuthenticationError) as refused:
            await cps.list_enrollments(CONTRACT)
    assert refused.value.status == 401
    assert good.client_token not in str(refused.value) and "d3Jvbmctc2VjcmV0" not in str(refused.value)
    assert [r["status"] for r in sandbox.requests()] == [401]


async def test_account_switch_key_is_signed_and_accepted(sandbox: SandboxServer) -> None:
    good = sandbox.credentials
    switched = Credentials(host=good.host, client_token=good.client_token, client_secret=good.client_secret,
                           access_token=good.access_token, account_switch_key="1-ABCDE:1-FGHIJ")
    sandbox.clear_requests()
    async with connect(sandbox, switched) as cps:
        await cps.list_enrollments(CONTRACT)
    (logged,) = sandbox.requests()
    assert logged["status"] == 200
    assert "accountSwitchKey=1-ABCDE" in str(logged.get("query", ""))


async def test_transient_faults_are_retried_over_the_wire(sandbox: SandboxServer) -> None:
    sandbox.set_faults(rules=[
        {"path": "/cps/v2/enrollments", "method": "GET", "status": 503, "count": 1},
        {"path": "/cps/v2/enrollments", "method": "GET", "status": 429, "retry_after": 0.01, "count": 1},
        {"path": "/cps/v2/enrollments", "method": "GET", "action": "drop", "count": 1},
        {"path": "/cps/v2/enrollments", "method": "GET", "action": "truncate", "keep": 5, "count": 1},
    ])
    sandbox.clear_requests()
    async with connect(sandbox, retry=RetryPolicy(base_delay=0.01, jitter=0.0)) as cps:
        assert await cps.list_enrollments(CONTRACT) == []
        assert cps.stats.retries == 4
    assert [r["status"] for r in sandbox.requests()][-1] == 200


async def test_create_whose_answer_is_lost_is_found_not_repeated(sandbox: SandboxServer) -> None:
    sandbox.set_faults(rules=[{"path": "/cps/v2/enrollments", "method": "POST", "action": "drop",
                               "phase": "after", "count": 1}])
    sandbox.clear_requests()
    async with connect(sandbox, retry=RetryPolicy(base_delay=0.01)) as cps:
        created = await cps.create_enrollment(CONTRACT, dv_body("lost.example.com"))
        listed = await cps.find_enrollments_by_cn(CONTRACT, "lost.example.com")
    assert [e.id for e in listed] == [created.enrollment_id]
    assert len(created.change_ids) == 1
    posts = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert len(posts) == 1


async def test_shared_sandbox_client_fixture(sandbox_client: CpsClient, sandbox_server: SandboxServer) -> None:
    assert await sandbox_client.list_enrollments(CONTRACT) == []
    assert sandbox_client.stats.requests == 1
    assert [(r["method"], r["path"], r["status"]) for r in sandbox_server.requests()] == [
        ("GET", "/cps/v2/enrollments", 200)]


async def test_client_verifies_tls_by_default_and_refuses_the_sandbox_without_its_ca(
        sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Trust only the system store: the sandbox's own CA must be asked for explicitly.
    for variable in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "RECONCILE_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    # The default retry policy: a verification failure is a setting to fix, never retried.
    async with CpsClient(sandbox.credentials, base_url=sandbox.base_url) as cps:
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED") as raised:
            await cps.list_enrollments(CONTRACT)
        assert cps.stats.requests == 1 and cps.stats.retries == 0
    assert "RECONCILE_CA_BUNDLE" in str(raised.value)
    async with connect(sandbox) as cps:  # the same call with the CA bundle goes through
        assert await cps.list_enrollments(CONTRACT) == []
