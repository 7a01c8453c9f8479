"""docs/migrate-from-terraform.md, run exactly as written (the walkthrough convention of
``tests/e2e/walkthrough.py``): CPS is the sandbox over HTTPS, holding the two enrollments the
guide's Terraform configuration made (created and deployed through the client); Terraform is
``fake_terraform.py``, which does what the guide asks of it to a real format-4 state file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from reconciler.cps.client import CpsClient
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec
from tests.e2e.walkthrough import clean_env, run_steps, section, steps
from tests.observe.rig import ORG, PERSON
from tests.observe.tfrig import (
    Deployed,
    Res,
    deploy,
    provider_attributes,
    tfstate_v4,
    upload_attributes,
    validation_attributes,
)

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "migrate-from-terraform.md"
CONTRACT = "ctr_1-ABC123"
SPECS = [
    DvEnrollmentSpec.model_validate({
        "name": "www", "type": "dv", "contract_id": CONTRACT, "common_name": "www.example.com", "sans": ["example.com"],
        "admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG}),
    ThirdPartyEnrollmentSpec.model_validate({
        "name": "shop", "type": "third-party", "contract_id": CONTRACT, "common_name": "shop.example.com",
        "sans": ["pay.example.com"], "admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG}),
]


def _walkthrough() -> list:
    return steps(section(GUIDE.read_text(encoding="utf-8"), "Walkthrough"))


def test_the_guide_walks_export_import_review_remove() -> None:
    commands = [s.command for s in _walkthrough() if s.command]
    assert commands[1] == "terraform show -json > ../cps-state.json"
    assert any(c.startswith("reconcile import --from-terraform ") for c in commands)
    assert commands.index("reconcile plan --detailed-exitcode") < min(
        i for i, c in enumerate(commands) if c.startswith("terraform state rm"))


async def _made_by_terraform(server: SandboxServer) -> dict[str, Deployed]:
    async with CpsClient(server.credentials, base_url=server.base_url, verify=server.ca_bundle) as client:
        return await deploy(client, server.advance, CONTRACT, SPECS)


def test_the_migration_guide_runs_as_written(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    terraform = bin_dir / "terraform"
    terraform.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests" / "e2e" / "fake_terraform.py"}" "$@"\n')
    terraform.chmod(0o755)
    work = tmp_path / "work"
    (work / "infra").mkdir(parents=True)
    with SandboxServer(engine=EngineConfig(validation_policy="trust-ack")) as server:
        made = anyio.run(_made_by_terraform, server)
        www, shop = made["www"], made["shop"]
        resources = [
            Res("akamai_cps_dv_enrollment", "www", provider_attributes(SPECS[0], www.enrollment_id)),
            Res("akamai_cps_dv_validation", "www", validation_attributes(www.enrollment_id, ack_post=True)),
            Res("akamai_cps_third_party_enrollment", "shop", provider_attributes(
                SPECS[1], shop.enrollment_id, auto_approve_warnings=["DNS_NAME_LONGER_THEN_255_CHARS"])),
            Res("akamai_cps_upload_certificate", "shop", upload_attributes(
                shop.enrollment_id, shop.uploaded, wait_for_deployment=True)),
            Res("akamai_cps_csr", "shop", {"id": f"{shop.enrollment_id}:1", "enrollment_id": shop.enrollment_id},
                mode="data"),
            Res("akamai_property", "web", {"id": "prp_1", "name": "web"}),
        ]
        (work / "infra" / "terraform.tfstate").write_text(json.dumps(tfstate_v4(resources), indent=2))
        env = clean_env({"AKAMAI_EDGERC": str(server.edgerc), "AKAMAI_EDGERC_SECTION": "sandbox",
                         "RECONCILE_CA_BUNDLE": server.ca_bundle}, [bin_dir])
        found = _walkthrough()
        cwd, outputs = run_steps(found, work, env, name="migration guide")

    printed = next(out for command, out in outputs if command.startswith("reconcile import --from-terraform"))
    assert "2 migrated, 0 skipped" in printed and "as www: specs/www.yaml" in printed
    told = [line.strip() for line in printed.splitlines() if line.strip().startswith("terraform state rm")]
    assert told == [s.command for s in found if s.command.startswith("terraform state rm")]  # the guide shows them
    plan = next(out for command, out in outputs if command == "reconcile plan --detailed-exitcode")
    assert "No changes" in plan
    assert sorted(outputs[-1][1].split()) == ["akamai_property.web", "data.akamai_cps_csr.shop"]  # state list
    assert cwd == work / "infra" and (work / "certs" / "certs" / "shop" / "rsa.pem").is_file()
