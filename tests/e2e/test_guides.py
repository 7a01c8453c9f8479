"""The how-to guides' walkthroughs, run exactly as written (the convention of
``tests/e2e/walkthrough.py``), each against the in-process sandbox of its own scratch repository.

A guide that needs something to exist first (enrollments made elsewhere, a PostgreSQL server) gets
it here, before its first block runs; everything the guide itself says is run as it says it.
``tests/test_docs.py`` requires every other shell block of a guide to be marked illustrative.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.walkthrough import clean_env, run_steps, section, steps
from tests.pgserver import PgCluster

DOCS = Path(__file__).resolve().parents[2] / "docs"

# Enrollments "made elsewhere": one DV, one third-party, applied from a repository that is then
# taken away, so only the sandbox's account (under .reconcile/sandbox/) still knows them.
ELSEWHERE_CONFIG = """\
default_contract: ctr_1-SANDBOX
defaults:
  admin_contact: {first_name: Ada, last_name: Lovelace, email: ada@example.com, phone: "+1-617-555-0100"}
  tech_contact: {first_name: Charles, last_name: Babbage, email: charles@example.com, phone: "+1-617-555-0101"}
  organization: {name: Example Inc, phone: "+1-617-555-0100", address_line_one: 150 Broadway,
                 city: Cambridge, region: MA, postal_code: "02142", country_code: US}
publishers:
  hook: {publish: 'mkdir -p .reconcile && echo "$RECONCILE_RECORD_NAME TXT $RECONCILE_RECORD_VALUE" >> .reconcile/dns-published.txt'}
"""
ELSEWHERE_SPECS = {
    "www.yaml": "name: www\ntype: dv\ncommon_name: www.example.com\nsans: [example.com]\n"
                "validation: {method: dns-01, publisher: hook}\n",
    "shop.yaml": "name: shop\ntype: third-party\ncommon_name: shop.example.com\ndual_stack: false\n"
                 "signer: {command: reconcile --sandbox sandbox-sign}\n",
}


def _guide(name: str) -> list:
    return steps(section((DOCS / name).read_text(encoding="utf-8"), "Walkthrough"))


def _applied_repository(repo: Path) -> None:
    """A repository whose specs were applied to its sandbox account (file state)."""
    (repo / "specs").mkdir(parents=True)
    (repo / "reconcile.yaml").write_text(ELSEWHERE_CONFIG)
    for name, text in ELSEWHERE_SPECS.items():
        (repo / "specs" / name).write_text(text)
    done = subprocess.run(["reconcile", "--sandbox", "apply", "--auto-approve"], cwd=repo, env=clean_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_first_repository_guide(tmp_path: Path) -> None:
    cwd, outputs = run_steps(_guide("first-repository.md"), tmp_path, clean_env(), name="first-repository.md")
    assert "No changes" in [out for command, out in outputs if "plan --detailed-exitcode" in command][-1]
    assert (cwd / "certs" / "shop" / "rsa.pem").is_file()


def test_third_party_guide_signs_by_hand(tmp_path: Path) -> None:
    found = _guide("third-party.md")
    assert any(s.command.endswith("# exits 3: waiting for signed certificate(s): RSA") for s in found)
    cwd, outputs = run_steps(found, tmp_path, clean_env(), name="third-party.md")
    csr_paths = [out for command, out in outputs if command.startswith("reconcile --sandbox csr")]
    assert csr_paths and csr_paths[0].strip().endswith("state/csr/shop.rsa.csr.pem")
    assert "No changes" in outputs[-1][1]
    assert (cwd / "certs" / "shop" / "rsa-chain.pem").is_file()


def test_importing_guide_ends_with_an_empty_plan(tmp_path: Path) -> None:
    repo = tmp_path / "my-certs"
    _applied_repository(repo)
    for made in ("specs", "state", "certs", "reconcile.yaml"):
        path = repo / made
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    cwd, outputs = run_steps(_guide("importing.md"), repo, clean_env(), name="importing.md")
    assert sorted(p.name for p in (cwd / "specs").iterdir()) == ["shop.example.com.yaml", "www.example.com.yaml"]
    assert "defaults:" in (cwd / "reconcile.yaml").read_text()
    assert "No changes" in outputs[-1][1]


def test_postgres_guide_moves_the_state(tmp_path: Path, pg_cluster: PgCluster) -> None:
    database = f"guide_{tmp_path.name.replace('-', '_').lower()}"[:60]
    pg_cluster.admin(f"CREATE DATABASE {database} OWNER reconcile")
    repo = tmp_path / "my-certs"
    _applied_repository(repo)
    env = clean_env({"RECONCILE_STATE_DSN": pg_cluster.dsn(database)})
    cwd, outputs = run_steps(_guide("postgres.md"), repo, env, name="postgres.md")
    assert "No changes" in [out for command, out in outputs if "plan" in command][-1]
    history = outputs[-1][1].splitlines()
    assert history[0].split()[:2] == ["VERSION", "SERIAL"] and "state migrate" in history[1]
    # the plan read the database, not the files: without the DSN it cannot run
    done = subprocess.run(["reconcile", "--sandbox", "plan"], cwd=cwd, env=clean_env(), capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1 and "RECONCILE_STATE_DSN" in done.stderr


@pytest.mark.parametrize("guide", ["first-repository.md", "third-party.md", "importing.md", "postgres.md"])
def test_guide_walkthroughs_are_found(guide: str) -> None:
    found = _guide(guide)
    assert [s for s in found if s.command], f"{guide}: no commands in its Walkthrough"
