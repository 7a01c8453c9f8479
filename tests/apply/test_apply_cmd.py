"""`reconcile apply` and `reconcile sandbox-sign` through click, against the in-process --sandbox."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from cryptography import x509

from reconciler.apply.thirdparty import check_certificate
from reconciler.cli.main import cli
from reconciler.state.store import StateStore
from tests.observe.rig import make_repo

from .test_thirdparty import make_csr

# Records the domain, and publishes the TXT record where the in-process sandbox looks (as the
# demo's hook in reconcile.yaml does): .reconcile/dns-published.txt.
HOOK = (f"{sys.executable} -c \"import os; e = os.environ; open('published.txt', 'a').write(e['RECONCILE_DOMAIN'] + '\\n'); "
        "os.makedirs('.reconcile', exist_ok=True); open('.reconcile/dns-published.txt', 'a').write("
        "e['RECONCILE_RECORD_NAME'] + ' TXT ' + e['RECONCILE_RECORD_VALUE'] + '\\n')\"")
SIGN = f"{sys.executable} -m reconciler sandbox-sign"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_repo(tmp_path, monkeypatch)


def spec(root: Path, name: str, **extra: Any) -> None:
    data = {"name": name, "type": "dv", "common_name": f"{name}.example.com",
            "validation": {"publisher": "hook", "hook": {"publish": HOOK}}, **extra}
    (root / "specs" / f"{name}.yaml").write_text(yaml.safe_dump(data))


def run(root: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--sandbox", "--no-color", "--config", str(root / "reconcile.yaml"), *args],
                              input=input, catch_exceptions=False)


def entries(root: Path) -> dict[str, Any]:
    return dict(StateStore(root / "state" / "reconcile-state.json").read().entries)


def test_asks_for_yes_and_anything_else_cancels(repo: Path) -> None:
    spec(repo, "www")
    refused = run(repo, "apply", input="no\n")
    assert refused.exit_code == 1 and "Apply cancelled." in refused.stderr
    assert "+ www: create" in refused.stdout and entries(repo) == {}
    accepted = run(repo, "apply", input="yes\n")
    assert accepted.exit_code == 0, accepted.output
    assert "www: done - deployed" in accepted.stdout
    assert "www: create enrollment" in accepted.stderr  # plain progress lines (not a terminal)
    assert entries(repo)["www"].enrollment_id is not None
    again = run(repo, "apply")  # nothing to do: no question asked
    assert again.exit_code == 0 and "No changes" in again.stdout


def test_an_apply_that_changes_something_stamps_last_refresh(repo: Path) -> None:
    spec(repo, "www")
    assert run(repo, "apply", "--auto-approve").exit_code == 0
    assert entries(repo)["www"].last_refresh is None  # created by this run: nothing was read before
    serial = StateStore(repo / "state" / "reconcile-state.json").read().serial
    assert run(repo, "apply", "--auto-approve").exit_code == 0  # nothing to do: state untouched
    assert StateStore(repo / "state" / "reconcile-state.json").read().serial == serial
    spec(repo, "www", sans=["www.example.com", "alt.example.com"])
    before = datetime.now(UTC)
    assert run(repo, "apply", "--auto-approve").exit_code == 0
    stamped = entries(repo)["www"].last_refresh
    assert stamped is not None and stamped >= before


def test_an_apply_removes_what_killed_runs_and_forgotten_entries_left(repo: Path) -> None:
    spec(repo, "www")
    assert run(repo, "apply", "--auto-approve").exit_code == 0
    state = repo / "state"
    leftovers = [state / ".reconcile-state.json.backup.0f1e2d3c4b5a69788796a5b4c3d2e1f0.tmp",
                 state / "reconcile-state" / ".www.json.0123456789abcdef.tmp",
                 state / "challenges" / ".k5.json.a1b2c3d4", state / "challenges" / "deleted-spec.json",
                 state / "csr" / "deleted-spec.rsa.csr.pem"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    spec(repo, "www", sans=["www.example.com", "alt.example.com"])
    assert run(repo, "apply", "--auto-approve").exit_code == 0
    assert [p for p in leftovers if p.exists()] == []


def test_an_apply_writes_only_the_entries_it_acts_on(repo: Path) -> None:
    """The rest of the state is not rewritten (no last_refresh stamp on enrollments left alone), so
    two branches applying to different enrollments touch different files."""
    spec(repo, "www")
    spec(repo, "api")
    assert run(repo, "apply", "--auto-approve").exit_code == 0
    files = repo / "state" / "reconcile-state"
    before = {p.name: p.read_bytes() for p in files.iterdir()}
    header = (repo / "state" / "reconcile-state.json").read_bytes()
    spec(repo, "www", sans=["www.example.com", "alt.example.com"])
    assert run(repo, "apply", "--auto-approve").exit_code == 0
    assert (files / "api.json").read_bytes() == before["api.json"]
    assert (files / "www.json").read_bytes() != before["www.json"]
    assert (repo / "state" / "reconcile-state.json").read_bytes() == header


def test_saved_plan_applies_exactly_and_stale_plan_is_refused(repo: Path) -> None:
    spec(repo, "www")
    spec(repo, "api")
    assert run(repo, "plan", "--out", "plan.json").exit_code == 0
    assert run(repo, "plan", "--out", "old.json").exit_code == 0
    applied = run(repo, "apply", "plan.json")
    assert applied.exit_code == 0, applied.output
    assert set(entries(repo)) == {"www", "api"}
    stale = run(repo, "apply", "old.json")
    assert stale.exit_code == 1 and "stale" in stale.stderr
    with_target = run(repo, "apply", "--target", "www", "plan.json")
    assert with_target.exit_code == 1


def test_target_no_wait_and_lock(repo: Path) -> None:
    spec(repo, "www")
    spec(repo, "api")
    store = StateStore(repo / "state" / "reconcile-state.json")
    with store.lock("apply"):
        locked = run(repo, "apply", "--auto-approve")
    assert locked.exit_code == 1 and "locked" in locked.stderr
    targeted = run(repo, "apply", "--auto-approve", "--target", "api", "--no-wait")
    assert targeted.exit_code == 0, targeted.output
    assert set(entries(repo)) == {"api"}
    # Submitted, or already finished: CPS validates the published record by itself and may be done
    # before the run looks again.
    assert "api: submitted" in targeted.stdout or "api: done" in targeted.stdout, targeted.stdout


def test_edgedns_publisher_through_the_local_sandbox(repo: Path) -> None:
    spec(repo, "www", validation={"publisher": "edgedns", "edgedns": {"zone": "example.com"}})
    applied = run(repo, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    calls = json.loads((repo / ".reconcile" / "sandbox" / "edgedns.json").read_text())["recordsets"]
    assert calls == {}  # published, then cleaned up after validation
    ledger = json.loads((repo / "state" / "challenges" / "www.json").read_text())
    assert ledger["publisher"] == "edgedns" and ledger["published"] and ledger["cleaned_up"]


def test_third_party_with_sandbox_sign_as_signer(repo: Path) -> None:
    data = {"name": "shop", "type": "third-party", "common_name": "shop.example.com", "dual_stack": True,
            "signer": {"command": SIGN}}
    (repo / "specs" / "shop.yaml").write_text(yaml.safe_dump(data))
    applied = run(repo, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert (repo / ".reconcile" / "test-ca" / "root.pem").exists()
    assert run(repo, "plan", "--detailed-exitcode").exit_code == 0


def test_sandbox_sign_from_env_and_flags(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csr = make_csr("ecdsa")
    (repo / "req.csr").write_text(csr)
    monkeypatch.setenv("RECONCILE_CSR_FILE", str(repo / "req.csr"))
    monkeypatch.setenv("RECONCILE_CERT_FILE", str(repo / "out" / "cert.pem"))
    monkeypatch.setenv("RECONCILE_CHAIN_FILE", str(repo / "out" / "chain.pem"))
    result = CliRunner().invoke(cli, ["--config", str(repo / "reconcile.yaml"), "sandbox-sign"])
    assert result.exit_code == 0, result.output
    checked = check_certificate(enrollment="x", key_algorithm="ecdsa", csr_pem=csr, cert_file=repo / "out" / "cert.pem",
                                chain_file=repo / "out" / "chain.pem", now=datetime.now(UTC))
    root = x509.load_pem_x509_certificate((repo / ".reconcile" / "test-ca" / "root.pem").read_bytes())
    chain = x509.load_pem_x509_certificate((checked.trust_chain_pem or "").encode())
    chain.verify_directly_issued_by(root)  # the persistent CA signs every time
    flags = CliRunner().invoke(cli, ["--config", str(repo / "reconcile.yaml"), "sandbox-sign", "--csr",
                                     str(repo / "req.csr"), "--cert", str(repo / "both.pem"), "--chain", "",
                                     "--days", "10"], env={"RECONCILE_CHAIN_FILE": ""})
    assert flags.exit_code == 0, flags.output
    assert (repo / "both.pem").read_text().count("BEGIN CERTIFICATE") == 2
    missing = CliRunner().invoke(cli, ["--config", str(repo / "reconcile.yaml"), "sandbox-sign", "--csr",
                                       str(repo / "nope.csr"), "--cert", str(repo / "x.pem")])
    assert missing.exit_code == 1 and "cannot read CSR" in missing.stderr
