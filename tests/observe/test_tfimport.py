"""tfimport.migrate offline: enrollments as CPS returns them, Terraform state as the provider writes it,
a real repository on disk. The HTTPS path (read_cps, the CLI, the first plan) is in tests/e2e."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from reconciler.config import load_config
from reconciler.cps.mapping import cps_view, spec_to_wire
from reconciler.cps.models import Enrollment
from reconciler.observe.importer import ImportRefused
from reconciler.observe.tfcps import TfCps, collect
from reconciler.observe.tfimport import CpsSide, TfImportResult, migrate
from reconciler.observe.tfstate import read_tfstate
from reconciler.sandbox.ca import CertificateAuthority
from reconciler.spec.loader import load_specs
from reconciler.state.model import State
from tests.apply.sandbox_rig import CONTRACT, dv_spec, tp_spec
from tests.observe.tfrig import Res, provider_attributes, tfstate_v4, upload_attributes


def _enrollment(eid: int, spec: Any) -> Enrollment:
    return Enrollment.model_validate({**spec_to_wire(spec), "id": eid, "location": f"/cps/v2/enrollments/{eid}"})


def _tf(resources: list[Res]) -> TfCps:
    return collect(read_tfstate(json.dumps(tfstate_v4(resources)), "tf.json"), "tf.json")


def _migrate(root: Path, tf: TfCps, cps: dict[int, CpsSide], **flags: Any) -> TfImportResult:
    (root / "specs").mkdir(exist_ok=True)
    if not (root / "reconcile.yaml").exists():
        (root / "reconcile.yaml").write_text("{}\n")
    config = load_config(cwd=root)
    return migrate(tf, cps, State(), config, config.specs_dir, **flags)


def test_dns_names_an_older_provider_does_not_model_come_from_cps(tmp_path: Path) -> None:
    spec = dv_spec(network_configuration={"clone_dns_names": False, "dns_names": ["www.example.com"]})
    attrs = provider_attributes(spec, 5)  # v9/v10: clone_dns_names false, no dns_names argument
    assert "dns_names" not in attrs["network_configuration"][0]
    done = _migrate(tmp_path, _tf([Res("akamai_cps_dv_enrollment", "www", attrs)]),
                    {5: CpsSide(CONTRACT, _enrollment(5, spec))})
    assert done.reports[0].differs == ()
    (loaded,) = load_specs(load_config(cwd=tmp_path)).specs
    assert loaded.spec.network_configuration.dns_names == ["www.example.com"]
    assert cps_view(loaded.spec) == cps_view(spec)


def test_a_contact_argument_terraform_left_unset_stays_unset_and_shows_as_drift(tmp_path: Path) -> None:
    in_cps = dv_spec(admin_contact={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
                                    "phone": "+1 555 0100", "title": "CTO"})
    attrs = provider_attributes(in_cps, 5)
    attrs["admin_contact"][0]["title"] = ""  # Terraform's state: no title
    done = _migrate(tmp_path, _tf([Res("akamai_cps_dv_enrollment", "www", attrs)]),
                    {5: CpsSide(CONTRACT, _enrollment(5, in_cps))})
    assert done.reports[0].differs == ("admin_contact.title",)
    written = yaml.safe_load((tmp_path / "specs" / "www.yaml").read_text())
    assert "title" not in written["admin_contact"]


def _pems(spec: Any) -> dict[str, tuple[str, str]]:
    ca = CertificateAuthority("Customer")
    keys = {"rsa": rsa.generate_private_key(65537, 2048), "ecdsa": ec.generate_private_key(ec.SECP256R1())}
    return {k: ca.issue(key.public_key(), spec.common_name, list(spec.sans)) for k, key in keys.items()}


def test_uploaded_pems_go_to_the_certificate_paths_without_overwriting_another_file(tmp_path: Path) -> None:
    spec = tp_spec()
    pems = _pems(spec)
    pems["ecdsa"] = (pems["ecdsa"][0], "")  # uploaded without a chain
    resources = [Res("akamai_cps_third_party_enrollment", "shop", provider_attributes(spec, 6)),
                 Res("akamai_cps_upload_certificate", "shop", upload_attributes(6, pems))]
    cps = {6: CpsSide(CONTRACT, _enrollment(6, spec))}
    (tmp_path / "certs" / "shop").mkdir(parents=True)
    (tmp_path / "certs" / "shop" / "rsa.pem").write_text("mine\n")
    with pytest.raises(ImportRefused, match="certs/shop/rsa.pem already exists with other content"):
        _migrate(tmp_path, _tf(resources), cps)
    assert not list((tmp_path / "specs").iterdir())

    (tmp_path / "certs" / "shop" / "rsa.pem").write_text(pems["rsa"][0].strip() + "\n")  # the same: fine
    done = _migrate(tmp_path, _tf(resources), cps)
    assert set(done.result.imported[0].certificate_fingerprints) == {"rsa", "ecdsa"}
    assert (tmp_path / "certs" / "shop" / "rsa-chain.pem").is_file()
    assert not (tmp_path / "certs" / "shop" / "ecdsa-chain.pem").exists()
    written = yaml.safe_load((tmp_path / "specs" / "shop.yaml").read_text())
    assert written["certificates"]["ecdsa"] == {"certificate": "certs/shop/ecdsa.pem"}  # no chain file to wait for
    assert any("not what production serves" in n for n in done.reports[0].notes)  # CPS serves nothing here
    (loaded,) = load_specs(load_config(cwd=tmp_path)).specs
    assert loaded.waiting == ()


def test_a_chain_that_does_not_chain_is_refused(tmp_path: Path) -> None:
    spec = tp_spec()
    ours, theirs = _pems(spec), _pems(spec)  # two different CAs
    resources = [Res("akamai_cps_third_party_enrollment", "shop", provider_attributes(spec, 6)),
                 Res("akamai_cps_upload_certificate", "shop",
                     upload_attributes(6, {"rsa": (ours["rsa"][0], theirs["rsa"][1])}))]
    with pytest.raises(ImportRefused, match="the uploaded certificates do not check out: certificates.rsa.trust_chain"):
        _migrate(tmp_path, _tf(resources), {6: CpsSide(CONTRACT, _enrollment(6, spec))})
    assert not (tmp_path / "certs").exists()


def test_a_value_the_spec_cannot_hold_is_refused_with_the_address(tmp_path: Path) -> None:
    attrs = provider_attributes(dv_spec(), 5, signature_algorithm="SHA-1")
    with pytest.raises(ImportRefused, match=r"akamai_cps_dv_enrollment.www: signature_algorithm: Input should be"):
        _migrate(tmp_path, _tf([Res("akamai_cps_dv_enrollment", "www", attrs)]),
                 {5: CpsSide(CONTRACT, _enrollment(5, dv_spec()))})


def test_tool_settings_the_defaults_already_give_are_not_written_but_others_are(tmp_path: Path) -> None:
    (tmp_path / "reconcile.yaml").write_text(yaml.safe_dump({"defaults": {
        "acknowledge_post_verification_warnings": True, "wait_for_deployment": False}}))
    spec = tp_spec()
    resources = [Res("akamai_cps_third_party_enrollment", "shop", provider_attributes(spec, 6)),
                 Res("akamai_cps_upload_certificate", "shop", upload_attributes(
                     6, _pems(spec), acknowledge_post_verification_warnings=False, wait_for_deployment=False))]
    _migrate(tmp_path, _tf(resources), {6: CpsSide(CONTRACT, _enrollment(6, spec))})
    written = yaml.safe_load((tmp_path / "specs" / "shop.yaml").read_text())
    assert written["acknowledge_post_verification_warnings"] is False  # against the default: pinned
    assert "wait_for_deployment" not in written  # the default says the same
    (loaded,) = load_specs(load_config(cwd=tmp_path)).specs
    assert not loaded.spec.acknowledge_post_verification_warnings and not loaded.spec.wait_for_deployment
