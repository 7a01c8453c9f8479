"""`reconcile import --from-terraform` over real HTTPS: enrollments Terraform made (created and deployed
through the client), a tfstate describing them as the provider would, then the CLI migrates them and
the first plan is empty; an edit afterwards plans exactly itself; refusals leave nothing behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from click.testing import CliRunner, Result
from cryptography import x509

from reconciler.cli.main import cli
from reconciler.config import load_config
from reconciler.cps.client import CpsClient
from reconciler.cps.mapping import cps_view
from reconciler.sandbox.testing import SandboxServer
from reconciler.spec.loader import load_specs
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec
from reconciler.state.store import StateStore
from reconciler.x509names import fingerprint
from tests.observe.rig import ORG, PERSON
from tests.observe.tfrig import (
    Deployed,
    Res,
    deploy,
    provider_attributes,
    show_json,
    tfstate_v4,
    upload_attributes,
    validation_attributes,
)
from tests.secretscan import SecretScan

CONTRACT = "ctr_1-TF"
PRE = ["DNS_NAME_LONGER_THEN_255_CHARS"]
POST = ["CERTIFICATE_ADDED_TO_TRUST_CHAIN", "TRUST_CHAIN_EMPTY"]


def _dv(name: str, cn: str, **extra: Any) -> DvEnrollmentSpec:
    return DvEnrollmentSpec.model_validate({
        "name": name, "type": "dv", "contract_id": CONTRACT, "common_name": cn, "admin_contact": PERSON,
        "tech_contact": {**PERSON, "email": "noc@example.com", "title": "NOC"}, "organization": ORG, **extra})


SPECS = [
    _dv("www", "www.example.com", sans=["example.com"], csr={"country_code": "US", "state": "MA", "city": "Cambridge",
                                                            "organization": "Example Org"}),
    ThirdPartyEnrollmentSpec.model_validate({
        "name": "shop", "type": "third-party", "contract_id": CONTRACT, "common_name": "shop.example.com",
        "sans": ["pay.example.com"], "admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG,
        "change_management": False, "network_configuration": {"ocsp_stapling": "off",
                                                              "disallowed_tls_versions": ["TLSv1"]}}),
    _dv("api", "api.example.com"),
    _dv("img", "img.example.com", geography="core", network_configuration={"quic_enabled": True}),
    _dv("legacy", "legacy.example.com", sni_only=False, secure_network="standard-tls"),
]


@dataclass
class World:
    """A sandbox holding what Terraform made, and the resources its state lists."""

    server: SandboxServer
    made: dict[str, Deployed]
    resources: list[Res]


async def _make(server: SandboxServer) -> dict[str, Deployed]:
    async with CpsClient(server.credentials, base_url=server.base_url, verify=server.ca_bundle) as client:
        return await deploy(client, server.advance, CONTRACT, SPECS)


def _resources(made: dict[str, Deployed]) -> list[Res]:
    by = {s.name: s for s in SPECS}
    shop = made["shop"]
    return [
        Res("akamai_cps_dv_enrollment", "www", provider_attributes(by["www"], made["www"].enrollment_id)),
        Res("akamai_cps_dv_validation", "www", validation_attributes(made["www"].enrollment_id, ack_post=True)),
        Res("akamai_cps_third_party_enrollment", "shop", provider_attributes(
            by["shop"], shop.enrollment_id, auto_approve_warnings=PRE, acknowledge_pre_verification_warnings=True)),
        Res("akamai_cps_upload_certificate", "shop", upload_attributes(
            shop.enrollment_id, shop.uploaded, auto_approve_warnings=POST, acknowledge_change_management=True,
            wait_for_deployment=True)),
        Res("akamai_cps_dv_enrollment", "this", provider_attributes(by["api"], made["api"].enrollment_id),
            module="module.certs", index="api"),
        Res("akamai_cps_dv_enrollment", "this", provider_attributes(by["img"], made["img"].enrollment_id),
            module="module.certs", index="img"),
        Res("akamai_cps_dv_enrollment", "site", provider_attributes(by["legacy"], made["legacy"].enrollment_id),
            module="module.old.module.inner", index=0),
        Res("akamai_cps_csr", "shop", {"id": f"{shop.enrollment_id}:1", "enrollment_id": shop.enrollment_id,
                                       "csr_rsa": "-----BEGIN CERTIFICATE REQUEST-----", "csr_ecdsa": ""},
            mode="data"),
        Res("akamai_property", "web", {"id": "prp_1", "name": "web"}),
        Res("akamai_cps_future_thing", "x", {"id": "1"}),
    ]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with SandboxServer() as server:
        made = anyio.run(_make, server)
        yield World(server, made, _resources(made))


def _repo(tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch, document: dict[str, Any]) -> Path:
    monkeypatch.setenv("RECONCILE_CA_BUNDLE", world.server.ca_bundle)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reconcile.yaml").write_text(f"default_contract: {CONTRACT}\n")
    (tmp_path / "terraform.json").write_text(json.dumps(document, indent=2))
    return tmp_path


def _run(repo: Path, world: World, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--no-color", "--edgerc", str(world.server.edgerc), "--section", "sandbox",
                                    "--config", str(repo / "reconcile.yaml"), *args], catch_exceptions=False)


EXPECTED = {"www": "www", "shop": "shop", "api": "certs-this-api", "img": "certs-this-img",
            "legacy": "old-inner-site-0"}


@pytest.mark.parametrize("shape", ["tfstate", "show-json"])
def test_migrate_then_the_first_plan_is_empty_and_an_edit_plans_exactly_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World, shape: str, secret_scan: SecretScan) -> None:
    document = tfstate_v4(world.resources) if shape == "tfstate" else show_json(world.resources)
    repo = _repo(tmp_path, world, monkeypatch, document)
    result = _run(repo, world, "import", "--from-terraform", "terraform.json")
    assert result.exit_code == 0, result.output
    assert "5 migrated, 0 skipped" in result.stdout
    assert "not migrated: akamai_cps_future_thing.x (reconcile does not know this resource type)" in result.stderr
    assert "akamai_property" not in result.output and "data.akamai_cps_csr" not in result.output
    assert result.stdout.count("CPS agrees with the Terraform state") == 5

    config = load_config(repo / "reconcile.yaml")
    loaded = {s.spec.name: s.spec for s in load_specs(config).specs}
    assert set(loaded) == set(EXPECTED.values())
    for original in SPECS:
        migrated = loaded[EXPECTED[original.name]]
        assert cps_view(migrated) == cps_view(original.model_copy(update={"name": migrated.name})), original.name
    www, shop = loaded["www"], loaded["shop"]
    assert www.acknowledge_post_verification_warnings and not www.acknowledge_pre_verification_warnings
    assert isinstance(shop, ThirdPartyEnrollmentSpec)
    assert shop.auto_approve_warnings == sorted(PRE + POST)
    assert shop.acknowledge_pre_verification_warnings and shop.acknowledge_change_management
    assert shop.wait_for_deployment and not shop.acknowledge_post_verification_warnings
    text = (repo / "specs" / "certs-this-api.yaml").read_text()
    assert text.startswith('# migrated from Terraform: module.certs.akamai_cps_dv_enrollment.this["api"]')
    assert "wait_for_deployment" not in text and "auto_approve_warnings" not in text  # as inherited: not written

    uploaded = world.made["shop"].uploaded
    assert set(uploaded) == {"rsa", "ecdsa"}
    for key, (cert, chain) in uploaded.items():
        assert (repo / "certs" / "shop" / f"{key}.pem").read_text().strip() == cert.strip()
        assert (repo / "certs" / "shop" / f"{key}-chain.pem").read_text().strip() == chain.strip()
    entries = StateStore(config.state_path).read().entries
    assert {n: e.enrollment_id for n, e in entries.items()} == {
        EXPECTED[n]: d.enrollment_id for n, d in world.made.items()}
    assert entries["shop"].certificate_fingerprints == {
        k: fingerprint(x509.load_pem_x509_certificate(c.encode())) for k, (c, _) in uploaded.items()}

    rm = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("terraform state rm")]
    assert rm == [
        "terraform state rm 'akamai_cps_dv_enrollment.www'", "terraform state rm 'akamai_cps_dv_validation.www'",
        "terraform state rm 'akamai_cps_third_party_enrollment.shop'",
        "terraform state rm 'akamai_cps_upload_certificate.shop'",
        """terraform state rm 'module.certs.akamai_cps_dv_enrollment.this["api"]'""",
        """terraform state rm 'module.certs.akamai_cps_dv_enrollment.this["img"]'""",
        "terraform state rm 'module.old.module.inner.akamai_cps_dv_enrollment.site[0]'"]

    plan = _run(repo, world, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    again = _run(repo, world, "import", "--from-terraform", "terraform.json")
    assert again.exit_code == 0, again.output
    assert "0 migrated, 5 skipped" in again.stdout and "already managed as shop" in again.stderr

    spec_file = repo / "specs" / "certs-this-img.yaml"
    data = yaml.safe_load(spec_file.read_text())
    data["network_configuration"]["ocsp_stapling"] = "off"
    spec_file.write_text(yaml.safe_dump(data))
    edited = _run(repo, world, "plan", "--detailed-exitcode", "--format", "json")
    assert edited.exit_code == 2, edited.output
    actions = json.loads(edited.stdout)["actions"]
    assert [(a["name"], a["kind"]) for a in actions] == [("certs-this-img", "update-network")]
    assert [c["path"] for c in actions[0]["changes"]] == ["network_configuration.ocsp_stapling"]

    secret_scan.add_secrets(world.server.credentials)
    secret_scan.add_path(repo)
    for name, text in (("import", result.output), ("plan", plan.output)):
        secret_scan.add_text(name, text)
