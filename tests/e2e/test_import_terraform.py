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
from reconciler.sandbox.engine_config import EngineConfig
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
    # What Terraform made acknowledges DV challenges without publishing them: trust the acknowledgement.
    with SandboxServer(engine=EngineConfig(validation_policy="trust-ack")) as server:
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
    world.server.clear_requests()
    result = _run(repo, world, "import", "--from-terraform", "terraform.json")
    assert result.exit_code == 0, result.output
    assert "5 migrated, 0 skipped" in result.stdout
    # One list for the one contract, one production read for the enrollment with uploaded certificates.
    shop_id = world.made["shop"].enrollment_id
    assert sorted((r["method"], r["path"]) for r in world.server.requests()) == [
        ("GET", "/cps/v2/enrollments"), ("GET", f"/cps/v2/enrollments/{shop_id}/deployments/production")]
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


def _nothing_written(repo: Path) -> None:
    assert not (repo / "specs").exists() or not any((repo / "specs").iterdir())
    assert not (repo / "certs").exists()
    state = repo / "state" / "reconcile-state.json"
    assert not state.exists() or not StateStore(state).read().entries


def test_refusals_name_what_is_wrong_and_write_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    repo = _repo(tmp_path, world, monkeypatch, tfstate_v4(world.resources, version=3))
    old = _run(repo, world, "import", "--from-terraform", "terraform.json")
    assert old.exit_code == 1 and "Terraform state format version 3; this reads format 4" in old.stderr

    (repo / "terraform.json").write_text(json.dumps({"format_version": "1.2", "planned_values": {},
                                                     "resource_changes": []}))
    plan = _run(repo, world, "import", "--from-terraform", "terraform.json")
    assert plan.exit_code == 1 and "this is a Terraform plan, not state" in plan.stderr

    by = {s.name: s for s in SPECS}
    shop_id = world.made["shop"].enrollment_id
    doubled = [*world.resources,
               Res("akamai_cps_dv_enrollment", "wrong", provider_attributes(by["api"], shop_id), module="module.m")]
    (repo / "terraform.json").write_text(json.dumps(show_json(doubled)))
    twice = _run(repo, world, "import", "--from-terraform", "terraform.json")
    assert twice.exit_code == 1, twice.output
    assert (f"module.m.akamai_cps_dv_enrollment.wrong and akamai_cps_third_party_enrollment.shop both manage "
            f"enrollment {shop_id}") in twice.stderr

    unknown = [*world.resources, Res("akamai_cps_dv_enrollment", "gone", provider_attributes(by["api"], 987654))]
    (repo / "terraform.json").write_text(json.dumps(show_json(unknown)))
    refused = _run(repo, world, "import", "--from-terraform", "terraform.json")
    assert refused.exit_code == 1, refused.output
    assert "akamai_cps_dv_enrollment.gone: CPS has no enrollment 987654" in refused.stderr

    wrong_type = [r for r in world.resources if r.name != "shop"] + [
        Res("akamai_cps_dv_enrollment", "shop", provider_attributes(by["api"], shop_id))]
    (repo / "terraform.json").write_text(json.dumps(tfstate_v4(wrong_type)))
    typed = _run(repo, world, "import", "--from-terraform", "terraform.json")
    assert typed.exit_code == 1
    assert f"akamai_cps_dv_enrollment.shop: enrollment {shop_id} is a third-party enrollment in CPS, not dv" \
        in typed.stderr
    _nothing_written(repo)


def test_sensitive_values_are_refused_by_path_and_never_printed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    by = {s.name: s for s in SPECS}
    phone = "+1 555 0173 ext 9931"
    attrs = provider_attributes(by["www"], world.made["www"].enrollment_id)
    attrs["tech_contact"] = [{**attrs["tech_contact"][0], "phone": phone}]
    marked = [Res("akamai_cps_dv_enrollment", "www", attrs, sensitive=(("tech_contact", 0, "phone"),))]
    for document in (tfstate_v4(marked), show_json(marked)):
        repo = _repo(tmp_path, world, monkeypatch, document)
        result = _run(repo, world, "-v", "import", "--from-terraform", "terraform.json")
        assert result.exit_code == 1, result.output
        assert "akamai_cps_dv_enrollment.www: Terraform marks tech_contact.0.phone sensitive" in result.stderr
        assert phone not in result.output and "0173" not in result.output
        _nothing_written(repo)


def test_a_taken_name_is_refused_unless_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    repo = _repo(tmp_path, world, monkeypatch, tfstate_v4(world.resources))
    (repo / "specs").mkdir()
    mine = repo / "specs" / "www.yaml"
    mine.write_text(yaml.safe_dump({"name": "www", "type": "dv", "common_name": "mine.example.com",
                                    "admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG}))
    before = mine.read_bytes()
    refused = _run(repo, world, "import", "--from-terraform", "terraform.json")
    assert refused.exit_code == 1
    assert "akamai_cps_dv_enrollment.www -> www" in refused.stderr and "--force" in refused.stderr
    assert sorted(p.name for p in (repo / "specs").iterdir()) == ["www.yaml"] and not (repo / "certs").exists()

    forced = _run(repo, world, "import", "--from-terraform", "terraform.json", "--force")
    assert forced.exit_code == 0, forced.output
    www_id = world.made["www"].enrollment_id
    assert f"as www-{www_id}:" in forced.stdout and mine.read_bytes() == before
    plan = _run(repo, world, "plan", "--format", "json")
    assert [(a["name"], a["kind"]) for a in json.loads(plan.stdout)["actions"]] == [("www", "create")]


def test_drift_since_the_last_terraform_apply_is_reported_and_planned_never_adopted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    by = {s.name: s for s in SPECS}
    attrs = provider_attributes(by["api"], world.made["api"].enrollment_id, sans=["api2.example.com"])
    attrs["network_configuration"][0]["ocsp_stapling"] = "off"
    repo = _repo(tmp_path, world, monkeypatch, tfstate_v4([Res("akamai_cps_dv_enrollment", "api", attrs)]))
    result = _run(repo, world, "import", "--from-terraform", "terraform.json")
    assert result.exit_code == 0, result.output
    assert "CPS differs from the Terraform state in network_configuration.ocsp_stapling, sans" in result.stdout
    assert "it shows the differences above as drift" in result.stdout
    written = yaml.safe_load((repo / "specs" / "api.yaml").read_text())
    assert written["network_configuration"]["ocsp_stapling"] == "off"  # Terraform's value, not CPS's
    assert sorted(written["sans"]) == ["api.example.com", "api2.example.com"]
    plan = _run(repo, world, "plan", "--detailed-exitcode", "--format", "json")
    assert plan.exit_code == 2, plan.output
    data = json.loads(plan.stdout)
    assert [(d["name"], d["kind"]) for d in data["drift"]] == [("api", "changed")]
    assert {c["path"] for c in data["actions"][0]["changes"]} == {"sans", "network_configuration.ocsp_stapling"}


def test_factor_defaults_moves_what_the_migrated_specs_share_and_the_plan_stays_empty(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    repo = _repo(tmp_path, world, monkeypatch, tfstate_v4(world.resources))
    result = _run(repo, world, "import", "--from-terraform", "terraform.json", "--factor-defaults")
    assert result.exit_code == 0, result.output
    assert "factored into" in result.stdout and "organization (7 fields)" in result.stdout
    config = yaml.safe_load((repo / "reconcile.yaml").read_text())
    assert config["defaults"]["organization"] == ORG
    api = yaml.safe_load((repo / "specs" / "certs-this-api.yaml").read_text())
    assert "organization" not in api and "contract_id" not in api
    plan = _run(repo, world, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
