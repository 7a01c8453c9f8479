"""`reconcile challenges` and `reconcile csr` against the in-process --sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from tests.sandbox.helpers import DEMO_PUBLISH

from .rig import make_repo, run, write_spec


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_repo(tmp_path, monkeypatch)


def test_challenges_of_a_manual_dv_change_live_and_from_the_ledger(repo: Path) -> None:
    write_spec(repo, "www", sans=["www.example.com", "api.example.com"],
               validation={"method": "dns-01", "publisher": "manual"})
    applied = run(repo, "apply", "--auto-approve")
    assert applied.exit_code == 3, applied.output  # waits on a person to publish
    live = run(repo, "challenges", "www", "--format", "json")
    assert live.exit_code == 0, live.output
    data = json.loads(live.stdout)
    assert data["source"] == "cps" and data["change_id"]
    dns = [c for c in data["challenges"] if c["type"] == "dns-01"]
    assert sorted(c["domain"] for c in dns) == ["api.example.com", "www.example.com"]
    assert {c["record_name"] for c in dns} == {"_acme-challenge.www.example.com.", "_acme-challenge.api.example.com."}
    assert any(c["type"] == "http-01" and c["path"] for c in data["challenges"])
    zone = run(repo, "challenges", "www", "--format", "zone").stdout.splitlines()
    txt = [line for line in zone if not line.startswith(";")]
    assert len(txt) == 2 and all(" 60 IN TXT \"" in line for line in txt)
    assert any(c["value"] in zone[1] + zone[2] for c in dns)
    table = run(repo, "challenges", "www").stdout
    assert table.splitlines()[0].split() == ["DOMAIN", "TYPE", "WHERE", "VALUE"]
    assert "_acme-challenge.api.example.com." in table
    # Offline (no --sandbox, no .edgerc): falls back to what apply recorded in the ledger.
    offline = run(repo, "challenges", "www", "--format", "json", sandbox=False)
    assert offline.exit_code == 0, offline.output
    recorded = json.loads(offline.stdout)
    assert recorded["source"] == "ledger" and recorded["change_id"] == data["change_id"]
    assert {c["record_name"] for c in recorded["challenges"]} >= {c["record_name"] for c in dns}
    assert "not live from CPS" in offline.stderr


def test_challenges_of_an_unknown_name_fail(repo: Path) -> None:
    result = run(repo, "challenges", "nope")
    assert result.exit_code == 1 and "not in the state file" in result.stderr


def test_csr_writes_both_csrs_of_a_dual_stack_third_party_change(repo: Path, tmp_path: Path) -> None:
    write_spec(repo, "shop", type="third-party", dual_stack=True)
    applied = run(repo, "apply", "--auto-approve")
    assert applied.exit_code == 3, applied.output  # waits for the certificates to be signed
    default = run(repo, "csr", "shop")
    assert default.exit_code == 0, default.output
    paths = [Path(p) for p in default.stdout.split()]
    assert sorted(p.name for p in paths) == ["shop.ecdsa.csr.pem", "shop.rsa.csr.pem"]
    assert all(p.parent == repo / "state" / "csr" for p in paths)
    for path in paths:
        csr = x509.load_pem_x509_csr(path.read_bytes())
        assert csr.is_signature_valid
        cn = csr.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
        assert cn == "shop.example.com"
    elsewhere = run(repo, "csr", "shop", "--out", str(tmp_path / "out"))
    assert elsewhere.exit_code == 0 and (tmp_path / "out" / "shop.rsa.csr.pem").exists()


def test_csr_without_a_pending_change_says_so(repo: Path) -> None:
    write_spec(repo, "www", validation={"publisher": "hook", "hook": {"publish": DEMO_PUBLISH}})
    assert run(repo, "apply", "--auto-approve").exit_code == 0
    result = run(repo, "csr", "www")
    assert result.exit_code == 1 and "no pending change" in result.stderr
