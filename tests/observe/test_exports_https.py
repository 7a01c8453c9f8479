"""exports.py over real HTTPS against the sandbox server (the client path the CLI commands use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from reconciler.cps.client import CpsClient
from reconciler.cps.mapping import spec_to_wire
from reconciler.observe.exports import NothingPending, export_csrs, live_challenges, render_challenges
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec
from reconciler.state.model import StateEntry

from .rig import ORG, PERSON

CONTRACT = "ctr_1-HTTPS"


def _body(model: Any, cn: str, **extra: Any) -> dict[str, Any]:
    spec = model.model_validate({"name": "x", "common_name": cn, "contract_id": CONTRACT, "admin_contact": PERSON,
                                 "tech_contact": PERSON, "organization": ORG, **extra})
    return spec_to_wire(spec)


async def _wait_for(client: CpsClient, server: Any, eid: int, input_type: str) -> None:
    for _ in range(100):
        enrollment = await client.get_enrollment(eid)
        change = await client.get_change(eid, enrollment.pending_change_ids[-1])
        if change.allowed(input_type) is not None:
            return
        server.advance(60)
    raise AssertionError(f"change never offered {input_type}")


@pytest.mark.anyio
async def test_live_challenges_and_csrs_over_https(sandbox_client: CpsClient, sandbox_server: Any,
                                                   tmp_path: Path) -> None:
    dv = await sandbox_client.create_enrollment(
        CONTRACT, _body(DvEnrollmentSpec, "www.example.com", type="dv", sans=["www.example.com", "b.example.com"]))
    await _wait_for(sandbox_client, sandbox_server, dv.enrollment_id, "lets-encrypt-challenges")
    entry = StateEntry(enrollment_id=dv.enrollment_id, contract_id=CONTRACT, common_name="www.example.com")
    export = await live_challenges(sandbox_client, "www", entry)
    assert export is not None and export.source == "cps"
    dns = {r.record_name for r in export.records if r.type == "dns-01"}
    assert dns == {"_acme-challenge.www.example.com.", "_acme-challenge.b.example.com."}
    assert "IN TXT" in render_challenges(export, "zone")
    with pytest.raises(NothingPending):  # a DV change offers no CSR
        await export_csrs(sandbox_client, "www", entry, tmp_path)

    sandbox_server.advance(301)  # CPS throttles creates per contract
    tp = await sandbox_client.create_enrollment(
        CONTRACT, _body(ThirdPartyEnrollmentSpec, "shop.example.com", type="third-party", dual_stack=False))
    await _wait_for(sandbox_client, sandbox_server, tp.enrollment_id, "third-party-certificate")
    shop = StateEntry(enrollment_id=tp.enrollment_id, contract_id=CONTRACT, common_name="shop.example.com")
    assert await live_challenges(sandbox_client, "shop", shop) is None  # no DV input on this change
    paths = await export_csrs(sandbox_client, "shop", shop, tmp_path / "csr")
    assert [p.name for p in paths] == ["shop.rsa.csr.pem"]
    assert x509.load_pem_x509_csr(paths[0].read_bytes()).is_signature_valid
