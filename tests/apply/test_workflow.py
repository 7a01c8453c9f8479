"""The per-enrollment step machine against the real sandbox (in process, virtual clock)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from reconciler.apply.publishers.edgedns import EdgeDnsPublisher
from reconciler.apply.publishers.hook import HookPublisher
from reconciler.apply.publishers.ledger import ChallengeLedger
from reconciler.apply.publishers.manual import ManualPublisher
from reconciler.apply.thirdparty import pem_fingerprint
from reconciler.apply.workflow import EnrollmentWorkflow
from reconciler.cps.auth import EdgeGridAuth
from reconciler.errors import CertificateMismatch
from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.engine import EngineConfig

from .sandbox_rig import SIGNER, dv_spec, sandbox_rig, tp_spec

pytestmark = pytest.mark.anyio

RECORDER = (f"{sys.executable} -c \"import json, os; open('hook.jsonl', 'a').write(json.dumps("
            "{k: v for k, v in os.environ.items() if k.startswith('RECONCILE_')}) + '\\n')\"")


def hook_calls(root: Path, file: str = "hook.jsonl") -> list[dict[str, str]]:
    path = root / file
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def names_of(pem: str) -> set[str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
               .get_values_for_type(x509.DNSName))


async def test_dv_with_hook_publisher_reaches_deployed(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = dv_spec()
        eid, cid = await rig.create(spec)
        publisher = HookPublisher(RECORDER, RECORDER.replace("hook.jsonl", "cleanup.jsonl"), cwd=tmp_path)
        outcome = await EnrollmentWorkflow(rig.context(spec, publisher=publisher), eid, cid).run()
        assert outcome.status == "done", outcome
        assert outcome.message.startswith("deployed")
        calls = hook_calls(tmp_path)
        assert sorted(c["RECONCILE_DOMAIN"] for c in calls) == ["example.com", "www.example.com"]
        assert all(c["RECONCILE_RECORD_NAME"] == f"_acme-challenge.{c['RECONCILE_DOMAIN']}." for c in calls)
        assert len(hook_calls(tmp_path, "cleanup.jsonl")) == 2  # cleaned up after validation
        production = await rig.client.get_production_deployment(eid)
        assert production is not None and production.primary_certificate is not None
        assert names_of(production.primary_certificate.certificate or "") == {"www.example.com", "example.com"}
        entry = rig.journal.entry("www")
        assert entry is not None and {c.domain for c in entry.challenges} == {"www.example.com", "example.com"}
        ledger = ChallengeLedger(tmp_path / "state" / "challenges", "www").read()
        assert ledger is not None and ledger.published and ledger.cleaned_up
        steps = [s for _, s, _ in rig.steps]
        assert steps.index("publish DV challenges") < steps.index("acknowledge DV challenges") \
            < steps.index("wait for deployment")


async def test_manual_dv_waits_until_confirmed_then_finishes(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = dv_spec()
        eid, cid = await rig.create(spec)
        ledger = ChallengeLedger(tmp_path / "state" / "challenges", "www")
        first = await EnrollmentWorkflow(rig.context(spec, publisher=ManualPublisher(ledger, "run-1"),
                                                     run_id="run-1"), eid, cid).run()
        assert first.status == "waiting" and "DNS publication of 2 challenge(s)" in first.message
        assert (tmp_path / "state" / "challenges" / "www.zone").read_text().count("IN\tTXT") == 2
        assert any("www.zone" in d for d in first.details)
        second = await EnrollmentWorkflow(rig.context(spec, publisher=ManualPublisher(ledger, "run-2"),
                                                      run_id="run-2"), eid, cid).run()
        assert second.status == "waiting", second  # a later run is no confirmation
        assert ledger.confirm() is not None  # `reconcile challenges www --confirm-published`
        third = await EnrollmentWorkflow(rig.context(spec, publisher=ManualPublisher(ledger, "run-3"),
                                                     run_id="run-3"), eid, cid).run()
        assert third.status == "done", third
        assert any("may be removed" in d for d in third.details)


async def test_third_party_dual_stack_signed_by_hook(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = tp_spec(signer={"command": SIGNER})
        eid, cid = await rig.create(spec)
        outcome = await EnrollmentWorkflow(rig.context(spec), eid, cid).run()
        assert outcome.status == "done", outcome
        for alg in ("rsa", "ecdsa"):
            assert (tmp_path / "state" / "csr" / f"shop.{alg}.csr.pem").read_text().startswith(
                "-----BEGIN CERTIFICATE REQUEST-----")
        entry = rig.journal.entry("shop")
        assert entry is not None and set(entry.certificate_fingerprints) == {"rsa", "ecdsa"}
        assert entry.intent is None
        production = await rig.client.get_production_deployment(eid)
        assert production is not None
        served = {pem_fingerprint(c.certificate) for c in production.certificates if c.certificate}
        assert served == set(entry.certificate_fingerprints.values())
        assert entry.certificate_fingerprints["rsa"] == pem_fingerprint(
            (tmp_path / "certs" / "shop" / "rsa.pem").read_text())


async def test_third_party_waits_for_files_then_uploads_once(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = tp_spec(dual_stack=False)
        eid, cid = await rig.create(spec)
        waiting = await EnrollmentWorkflow(rig.context(spec), eid, cid).run()
        assert waiting.status == "waiting" and "RSA" in waiting.message
        csr_file = tmp_path / "state" / "csr" / "shop.rsa.csr.pem"
        assert any(str(csr_file) in d for d in waiting.details)
        # The person has their CA sign the CSR the tool wrote.
        leaf, chain = CertificateAuthority("Customer").sign_csr(csr_file.read_text())
        (tmp_path / "certs" / "shop").mkdir(parents=True)
        (tmp_path / "certs" / "shop" / "rsa.pem").write_text(leaf)
        (tmp_path / "certs" / "shop" / "rsa-chain.pem").write_text(chain)
        rig.app.runtime.requests.clear()
        done = await EnrollmentWorkflow(rig.context(spec), eid, cid).run()
        assert done.status == "done", done
        uploads = [r for r in rig.app.runtime.requests if r["path"].endswith("third-party-cert-and-trust-chain")]
        assert len(uploads) == 1


async def test_third_party_mismatch_is_refused_before_upload(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = tp_spec(dual_stack=False)
        eid, cid = await rig.create(spec)
        other = tp_spec(name="other", cn="other.example.com", dual_stack=False)
        other_eid, other_cid = await rig.create(other)
        # A certificate for some other key: signed from a CSR that is not the one CPS issued.
        await EnrollmentWorkflow(rig.context(other), other_eid, other_cid).run()
        leaf, chain = CertificateAuthority("Customer").sign_csr(
            (tmp_path / "state" / "csr" / "other.rsa.csr.pem").read_text())
        (tmp_path / "certs" / "shop").mkdir(parents=True)
        (tmp_path / "certs" / "shop" / "rsa.pem").write_text(leaf)
        (tmp_path / "certs" / "shop" / "rsa-chain.pem").write_text(chain)
        rig.app.runtime.requests.clear()
        with pytest.raises(CertificateMismatch) as info:
            await EnrollmentWorkflow(rig.context(spec), eid, cid).run()
        assert "certs/shop/rsa.pem" in str(info.value) and "public key does not match" in str(info.value)
        assert not [r for r in rig.app.runtime.requests if r["method"] == "POST"]


async def test_post_verification_warnings_wait_unless_allowed(tmp_path: Path) -> None:
    engine = EngineConfig(create_throttle_seconds=0, post_verification_warnings=True, validation_policy="trust-ack")
    async with sandbox_rig(tmp_path, engine) as rig:
        spec = dv_spec()
        eid, cid = await rig.create(spec)
        publisher = HookPublisher("true", None, cwd=tmp_path)
        held = await EnrollmentWorkflow(rig.context(spec, publisher=publisher), eid, cid).run()
        assert held.status == "waiting" and "post-verification warnings" in held.message
        assert any(d.startswith("DNS_NAME_CAA_NOT_VALIDATED: ") for d in held.details)
        allowed = dv_spec(auto_approve_warnings=["DNS_NAME_CAA_NOT_VALIDATED"])
        done = await EnrollmentWorkflow(rig.context(allowed, publisher=publisher), eid, cid).run()
        assert done.status == "done", done


async def test_change_management_waits_unless_acknowledged(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = tp_spec(dual_stack=False, change_management=True, signer={"command": SIGNER})
        eid, cid = await rig.create(spec)
        held = await EnrollmentWorkflow(rig.context(spec), eid, cid).run()
        assert held.status == "waiting" and "change management" in held.message
        assert await rig.client.get_production_deployment(eid) is None
        staging = await rig.client.get_staging_deployment(eid)
        assert staging is not None and staging.certificates
        go = tp_spec(dual_stack=False, change_management=True, acknowledge_change_management=True,
                     signer={"command": SIGNER})
        done = await EnrollmentWorkflow(rig.context(go), eid, cid).run()
        assert done.status == "done", done


async def test_no_wait_stops_once_cps_has_everything(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = tp_spec(dual_stack=False, signer={"command": SIGNER})
        eid, cid = await rig.create(spec)
        outcome = await EnrollmentWorkflow(rig.context(spec, wait=False), eid, cid).run()
        assert outcome.status == "submitted", outcome
        assert await rig.client.get_production_deployment(eid) is None


async def test_timeout_while_cps_works(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        rig.step_seconds = 0.0  # the virtual clock stands still: CPS never finishes
        spec = tp_spec(dual_stack=False, signer={"command": SIGNER})
        eid, cid = await rig.create(spec)
        outcome = await EnrollmentWorkflow(rig.context(spec, timeout=0.5), eid, cid).run()
        assert outcome.status == "timeout" and "still" in outcome.message


async def test_cancelled_change_fails_clearly(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = tp_spec(dual_stack=False)
        eid, cid = await rig.create(spec)
        await rig.client.cancel_change(eid, cid)
        outcome = await EnrollmentWorkflow(rig.context(spec, timeout=2), eid, cid).run()
        assert outcome.status == "failed" and "cancelled" in outcome.message


async def test_edgedns_publisher_really_validates_under_dns_policy(tmp_path: Path) -> None:
    """With validation policy "dns" the sandbox checks TXT records in its own Edge DNS: only a
    publisher that really published gets the domain validated."""
    engine = EngineConfig(create_throttle_seconds=0, validation_policy="dns")
    async with sandbox_rig(tmp_path, engine) as rig:
        creds = rig.app.runtime.config.credentials.for_host("cps.sandbox.test")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.app), base_url="https://cps.sandbox.test",
                                     auth=EdgeGridAuth(creds)) as dns_api:
            spec = dv_spec(validation={"publisher": "edgedns", "edgedns": {"zone": "example.com"}})
            eid, cid = await rig.create(spec)
            publisher = EdgeDnsPublisher(dns_api, "example.com")
            outcome = await EnrollmentWorkflow(rig.context(spec, publisher=publisher), eid, cid).run()
            assert outcome.status == "done", outcome
            # Cleanup removed the records once CPS had validated.
            listing = await dns_api.get("/config-dns/v2/zones/example.com/names/_acme-challenge.example.com/types/TXT")
            assert listing.status_code == 404


async def test_unpublished_challenges_never_validate_under_dns_policy(tmp_path: Path) -> None:
    engine = EngineConfig(create_throttle_seconds=0, validation_policy="dns")
    async with sandbox_rig(tmp_path, engine) as rig:
        spec = dv_spec()
        eid, cid = await rig.create(spec)
        liar = HookPublisher("true", None, cwd=tmp_path)  # claims success, publishes nothing
        outcome = await EnrollmentWorkflow(rig.context(spec, publisher=liar, timeout=1.0), eid, cid).run()
        assert outcome.status in ("timeout", "failed"), outcome
        assert await rig.client.get_production_deployment(eid) is None


async def test_rfc2136_publisher_validated_by_sandbox_through_real_bind(tmp_path: Path, bind_server) -> None:  # type: ignore[no-untyped-def]
    """Full loop: the workflow publishes TXT records into BIND by TSIG-signed dynamic update, and
    the sandbox (policy "dns") validates the domains by querying that same BIND."""
    from reconciler.apply.publishers.rfc2136 import Rfc2136Publisher, Rfc2136Settings

    engine = EngineConfig(create_throttle_seconds=0, validation_policy="dns",
                          dns_resolver=f"127.0.0.1:{bind_server.port}")
    async with sandbox_rig(tmp_path, engine) as rig:
        spec = dv_spec(cn="www.example.test", sans=("example.test",))
        eid, cid = await rig.create(spec)
        publisher = Rfc2136Publisher(
            Rfc2136Settings(server="127.0.0.1", port=bind_server.port, zone="example.test",
                            tsig_key_name=bind_server.key_name, tsig_secret_env="TSIG"),
            environ={"TSIG": bind_server.secret})
        outcome = await EnrollmentWorkflow(rig.context(spec, publisher=publisher), eid, cid).run()
        assert outcome.status == "done", outcome
        # Cleaned up once validated.
        assert bind_server.txt_values("_acme-challenge.www.example.test.") == set()


# -- inputs whose answer is lost (the client raises WriteOutcomeUnknown; the workflow re-reads) --

UPLOAD_PATH = "/cps/v2/enrollments/{e}/changes/{c}/input/update/third-party-cert-and-trust-chain"


def _accepted(rig: object, suffix: str) -> list[dict[str, object]]:
    log = rig.app.runtime.requests  # type: ignore[attr-defined]
    return [r for r in log if str(r["path"]).endswith(suffix) and r["method"] == "POST"
            and 200 <= int(r.get("processedStatus") or r["status"] or 0) < 300]


@pytest.mark.parametrize("rule", [
    {"action": "drop", "phase": "after"},          # landed, answer lost: must not go up again
    {"status": 503, "phase": "after"},
    {"status": 500},                               # not landed: sent again after the re-read
    {"action": "drop"},
], ids=["drop-after", "503-after", "500-before", "drop-before"])
async def test_upload_with_a_lost_answer_goes_up_exactly_once(tmp_path: Path, rule: dict[str, object]) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = tp_spec(signer={"command": SIGNER})
        eid, cid = await rig.create(spec)
        rig.app.runtime.faults.add({"rules": [{**rule, "method": "POST", "count": 1,
                                               "path": UPLOAD_PATH.format(e="{e}", c="{c}")}]})
        outcome = await EnrollmentWorkflow(rig.context(spec), eid, cid).run()
        assert outcome.status == "done", outcome
        assert rig.app.runtime.faults.rules[0].fired == 1
        assert len(_accepted(rig, "/third-party-cert-and-trust-chain")) == 1
        entry = rig.journal.entry("shop")
        assert entry is not None and entry.intent is None and set(entry.certificate_fingerprints) == {"rsa", "ecdsa"}


@pytest.mark.parametrize("rule", [{"status": 503}, {"action": "drop", "phase": "after"}], ids=["503", "drop-after"])
async def test_dv_acknowledgement_with_a_lost_answer_is_given_again_only_if_still_needed(
        tmp_path: Path, rule: dict[str, object]) -> None:
    async with sandbox_rig(tmp_path) as rig:
        spec = dv_spec()
        eid, cid = await rig.create(spec)
        rig.app.runtime.faults.add({"rules": [{**rule, "method": "POST", "count": 1,
                                               "path": "*/lets-encrypt-challenges-completed"}]})
        publisher = HookPublisher(RECORDER, None, cwd=tmp_path)
        outcome = await EnrollmentWorkflow(rig.context(spec, publisher=publisher), eid, cid).run()
        assert outcome.status == "done", outcome
        acks = _accepted(rig, "/lets-encrypt-challenges-completed")
        assert len(acks) == 1  # landed once: never repeated after it landed, repeated when it had not
        assert len(hook_calls(tmp_path)) == 2  # published once, not again for the second acknowledgement


async def test_signer_that_moves_the_certificate_out_of_the_repository_is_refused_before_upload(
        tmp_path: Path) -> None:
    """Validation checked the paths before apply; a hook that swaps a directory for a symlink to
    elsewhere afterwards must not get a file from outside the repository uploaded."""
    root = tmp_path / "repo"
    (root / "certs").mkdir(parents=True)
    (root / "sign.py").write_text(
        "import os, pathlib\n"
        "from reconciler.sandbox.ca import CertificateAuthority\n"
        "outside = pathlib.Path('..', 'outside').resolve()\n"
        "outside.mkdir(exist_ok=True)\n"
        "os.rmdir('certs/shop')\n"  # made empty for the hook by apply
        "os.symlink(outside, 'certs/shop')\n"
        "leaf, chain = CertificateAuthority('Customer').sign_csr(open(os.environ['RECONCILE_CSR_FILE']).read())\n"
        "open(os.environ['RECONCILE_CERT_FILE'], 'w').write(leaf)\n"
        "open(os.environ['RECONCILE_CHAIN_FILE'], 'w').write(chain)\n")
    async with sandbox_rig(root) as rig:
        spec = tp_spec(dual_stack=False, signer={"command": f"{sys.executable} sign.py"})
        eid, cid = await rig.create(spec)
        rig.app.runtime.requests.clear()
        outcome = await EnrollmentWorkflow(rig.context(spec), eid, cid).run()
        assert (tmp_path / "outside" / "rsa.pem").is_file(), "the hook did not run as the test intends"
        assert outcome.status == "failed", outcome
        assert "certs/shop/rsa" in outcome.message and "outside the repository" in outcome.message
        assert not [r for r in rig.app.runtime.requests if r["method"] == "POST"]


async def test_a_key_mismatch_uploaded_elsewhere_is_never_acknowledged_by_apply(tmp_path: Path) -> None:
    """Issue 18: CPS takes a certificate for another key and stops for review; apply shows the
    warning and waits for a person (exit 3) even when the spec acknowledges every warning."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from reconciler.cps.models import CertificateAndTrustChain

    async with sandbox_rig(tmp_path) as rig:
        spec = tp_spec(dual_stack=False, acknowledge_post_verification_warnings=True,
                       auto_approve_warnings=["CSR_VS_CERTIFICATE_KEY_MISMATCH"])
        eid, cid = await rig.create(spec)
        rig.app.runtime.advance(600)
        other = rsa.generate_private_key(65537, 2048)
        leaf, chain = CertificateAuthority("Elsewhere").issue(other.public_key(), spec.common_name, list(spec.sans))
        # Someone else (Control Center, another tool) uploads it.
        await rig.client.upload_third_party_certificates(eid, cid, [
            CertificateAndTrustChain(key_algorithm="RSA", certificate=leaf, trust_chain=chain)])
        held = await EnrollmentWorkflow(rig.context(spec), eid, cid).run()
        assert held.status == "waiting" and "never acknowledges" in held.message, held
        assert any(d.startswith("CSR_VS_CERTIFICATE_KEY_MISMATCH: RSA: ") or "CSR_VS_CERTIFICATE_KEY_MISMATCH" in d
                   for d in held.details), held.details
        change = await rig.client.get_change(eid, cid)
        assert change.allowed("post-verification-warnings-acknowledgement") is not None  # still waiting in CPS
        assert not [r for r in rig.app.runtime.requests if r["path"].endswith("post-verification-warnings-ack")]
