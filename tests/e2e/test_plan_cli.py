"""`reconcile --sandbox plan` end to end through the CLI: formats, exit codes, saved plans, flags."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from reconciler.cli.wiring import LocalSandboxClient, sandbox_dir
from reconciler.config import load_config
from reconciler.cps.mapping import spec_to_wire
from reconciler.plan.saved import load_saved_plan
from reconciler.sandbox.local import open_local_sandbox
from reconciler.spec.loader import load_specs
from reconciler.state.model import StateEntry
from reconciler.state.store import StateStore
from tests.sandbox.helpers import DEMO_PUBLISH, publish_to_zone_file

CONTRACT = "ctr_1-AB123"
CONTACT = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1-555-0100"}
ORG = {"name": "Example Inc", "phone": "+1-555-0100", "address_line_one": "1 Main St", "city": "Cambridge",
       "region": "MA", "postal_code": "02142", "country_code": "US"}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    config = {"default_contract": CONTRACT,
              "defaults": {"admin_contact": CONTACT, "tech_contact": CONTACT, "organization": ORG,
                           "validation": {"publisher": "hook", "hook": {"publish": DEMO_PUBLISH}}}}
    (root / "reconcile.yaml").write_text(yaml.safe_dump(config))
    for name in ("www", "api"):
        spec = {"name": name, "type": "dv", "common_name": f"{name}.example.com"}
        (root / "specs" / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(root)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("RECONCILE_SANDBOX_SPEED", "0")
    return root


def run(*args: str, color: bool = False) -> Result:
    return CliRunner().invoke(cli, ["--sandbox", "plan", *args], color=color, catch_exceptions=False)


def test_empty_sandbox_plans_creates_and_detailed_exitcode_says_changes(repo: Path) -> None:
    result = run("--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "+ api: create (new)" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "Plan: 2 to create, 0 to update, 0 to delete, 0 to continue."
    assert run().exit_code == 0  # without the flag, changes are not an error


def test_formats(repo: Path) -> None:
    data = json.loads(run("--format", "json").stdout)
    assert data["format_version"] == 1 and [a["kind"] for a in data["actions"]] == ["create", "create"]
    md = run("--format", "markdown").stdout
    assert md.startswith("<!-- cps-reconciler-plan -->\n**Plan: 2 to create")


def test_colour_follows_no_color(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "\x1b[32m+" in run(color=True).stdout
    no_flag = CliRunner().invoke(cli, ["--sandbox", "--no-color", "plan"], color=True)
    assert "\x1b[" not in no_flag.stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in run(color=True).stdout


@pytest.mark.parametrize("flag", ["-out", "--out"])
def test_out_saves_a_checked_plan(repo: Path, flag: str) -> None:
    result = run(flag, "plan.json")
    assert result.exit_code == 0 and "reconcile apply plan.json" in result.stderr
    saved = load_saved_plan(repo / "plan.json")
    assert [a.key for a in saved.actions] == [("api", "create"), ("www", "create")]
    assert saved.refreshed and saved.state_serial == 0


@pytest.mark.parametrize("flags", [["--no-refresh"], ["--refresh=false"]])
def test_no_refresh_says_so_loudly_and_makes_no_sandbox(repo: Path, flags: list[str]) -> None:
    result = run(*flags)
    assert result.exit_code == 0
    assert "WITHOUT refreshing" in result.stderr and "WITHOUT refreshing" in result.stdout
    assert not sandbox_dir(load_config(cwd=repo)).exists()


def test_target_narrows_and_warns(repo: Path) -> None:
    data = json.loads(run("--target", "www", "--format", "json").stdout)
    assert [a["name"] for a in data["actions"]] == ["www"] and data["targets"] == ["www"]
    assert any("--target" in w for w in data["warnings"])


def test_bad_spec_is_an_error_naming_file_and_line(repo: Path) -> None:
    (repo / "specs" / "bad.yaml").write_text("name: bad\ntype: dv\ncommon_name: 'not a host!'\n")
    result = CliRunner().invoke(cli, ["--sandbox", "plan", "--detailed-exitcode"])
    assert result.exit_code == 1 and "specs/bad.yaml:3" in result.stderr


def _arrange_apply(repo: Path) -> dict[str, int]:
    """Create every spec's enrollment in the persisted sandbox, walk DV to deployed, record state."""
    config = load_config(cwd=repo)
    store = StateStore(config.state_path)

    async def go() -> dict[str, int]:
        sandbox = open_local_sandbox(sandbox_dir(config), speed=0)
        ids = {}
        async with LocalSandboxClient(sandbox) as client:
            for loaded in load_specs(config).specs:
                status = await client.create_enrollment(CONTRACT, spec_to_wire(loaded.spec))
                eid, cid = status.enrollment_id, status.change_ids[0]
                store.save_entry(loaded.name, StateEntry(enrollment_id=eid, contract_id=CONTRACT,
                                                         common_name=loaded.spec.common_name,
                                                         spec_hash=loaded.spec_hash))
                sandbox.advance(300)
                # Published where the in-process sandbox looks, then acknowledged.
                publish_to_zone_file(sandbox_dir(config).parent / "dns-published.txt",
                                     await client.get_dv_challenges(eid, cid))
                await client.acknowledge_dv_challenges(eid, cid)
                sandbox.advance(6 * 3600)
                ids[loaded.name] = eid
        return ids

    return asyncio.run(go())


def test_after_apply_plan_is_empty_then_spec_edit_shows_update(repo: Path) -> None:
    _arrange_apply(repo)
    result = run("--detailed-exitcode")
    assert result.exit_code == 0, result.stdout
    assert "No changes." in result.stdout
    (repo / "specs" / "www.yaml").write_text(yaml.safe_dump(
        {"name": "www", "type": "dv", "common_name": "www.example.com",
         "network_configuration": {"ocsp_stapling": "off"}}))
    changed = run("--detailed-exitcode")
    assert changed.exit_code == 2
    assert "~ www: update-network (spec-changed)" in changed.stdout
    assert 'network_configuration.ocsp_stapling: "on" → "off" (network)' in changed.stdout


def test_removed_spec_is_a_blocked_delete_until_allowed(repo: Path) -> None:
    ids = _arrange_apply(repo)
    (repo / "specs" / "api.yaml").unlink()
    blocked = run("--detailed-exitcode")
    assert blocked.exit_code == 2 and "Nothing will be applied: 1 blocked action" in blocked.stdout
    assert "to allow: pass --allow-delete" in blocked.stdout
    allowed = run("--allow-delete", "--format", "json")
    (action,) = json.loads(allowed.stdout)["actions"]
    assert (action["kind"], action["enrollment_id"]) == ("delete", ids["api"])


def _expired_rsa_certificate(names: list[str]) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(65537, 2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=400)).not_valid_after(now - timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))


def test_an_expired_certificate_file_already_uploaded_does_not_stop_the_plan(repo: Path) -> None:
    """After its upload the file stays in the repository; once it expires (a renewal missed),
    plan, validate and status must still run for every enrollment. Any other expired file stops
    them, as apply would refuse to upload it."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from reconciler.x509names import fingerprint

    cert = _expired_rsa_certificate(["shop.example.com"])
    (repo / "certs").mkdir()
    (repo / "certs" / "shop.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (repo / "specs" / "shop.yaml").write_text(yaml.safe_dump({
        "name": "shop", "type": "third-party", "common_name": "shop.example.com", "dual_stack": False,
        "certificates": {"rsa": {"certificate": "certs/shop.pem"}}}))
    store = StateStore(load_config(cwd=repo).state_path)
    store.save_entry("shop", StateEntry(enrollment_id=7, contract_id=CONTRACT, common_name="shop.example.com",
                                        certificate_fingerprints={"rsa": fingerprint(cert)}))

    planned = run("--no-refresh")
    assert planned.exit_code == 0, planned.output
    assert "specs/shop.yaml" in planned.stderr and "it is the certificate uploaded before" in planned.stderr
    checked = CliRunner().invoke(cli, ["validate"])
    assert checked.exit_code == 0 and "warning" in checked.output and "expired on" in checked.output
    status = CliRunner().invoke(cli, ["--sandbox", "status", "--format", "json"])
    assert status.exit_code == 0, status.output
    assert {row["name"] for row in json.loads(status.stdout)["enrollments"]} >= {"shop", "www", "api"}

    store.update_entry("shop", certificate_fingerprints={})
    refused = run("--no-refresh")
    assert refused.exit_code == 1 and "certs/shop.pem expired on" in refused.stderr
    assert CliRunner().invoke(cli, ["validate"]).exit_code == 1
    assert CliRunner().invoke(cli, ["--sandbox", "status"]).exit_code == 1
