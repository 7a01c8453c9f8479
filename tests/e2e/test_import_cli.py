"""Adopting enrollments made without the tool: import --all, then the plan is empty; an edit shows exactly itself."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import anyio
import pytest
import yaml

from reconciler.cps.client import CpsClient
from reconciler.cps.mapping import spec_to_wire
from reconciler.errors import Conflict
from reconciler.sandbox.local import open_local_sandbox
from reconciler.spec.models import DvEnrollmentSpec
from reconciler.state.model import StateEntry
from reconciler.state.store import StateStore
from tests.observe.rig import ORG, PERSON, make_repo, run
from tests.sandbox.helpers import publish_to_zone_file

CONTRACT = "ctr_1-CLI"


async def _create_outside(repo: Path) -> list[int]:
    """Three DV enrollments (two share a CN) created and deployed through the client alone."""
    sandbox = open_local_sandbox(repo / ".reconcile" / "sandbox")
    ids: list[int] = []
    try:
        async with CpsClient(sandbox.credentials, base_url=sandbox.base_url, transport=sandbox.transport) as client:
            for cn, sans in (("www.example.com", ["www.example.com", "a.example.com"]),
                             ("api.example.com", []), ("www.example.com", [])):
                spec = DvEnrollmentSpec.model_validate({
                    "name": "x", "type": "dv", "common_name": cn, "sans": sans, "contract_id": CONTRACT,
                    "admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG})
                status = await client.create_enrollment(CONTRACT, spec_to_wire(spec), allow_duplicate_cn=True)
                ids.append(status.enrollment_id)
                sandbox.advance(301)  # CPS throttles creates per contract
            for _ in range(200):
                pending = False
                for eid in ids:
                    for cid in (await client.get_enrollment(eid)).pending_change_ids:
                        pending = True
                        change = await client.get_change(eid, cid)
                        if change.allowed("lets-encrypt-challenges") is not None:
                            # Published where the in-process sandbox looks, then acknowledged.
                            publish_to_zone_file(repo / ".reconcile" / "dns-published.txt",
                                                 await client.get_dv_challenges(eid, cid))
                            with contextlib.suppress(Conflict):  # CPS may have found them on its own
                                await client.acknowledge_dv_challenges(eid, cid)
                if not pending:
                    break
                sandbox.advance(600)
            else:
                raise AssertionError("sandbox enrollments never deployed")
    finally:
        sandbox.close()
    return ids


def test_import_all_then_plan_is_empty_and_an_edit_shows_exactly_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, monkeypatch)
    ids = anyio.run(_create_outside, repo)
    imported = run(repo, "import", "--all")
    assert imported.exit_code == 0, imported.output
    assert "3 imported" in imported.stdout
    files = sorted(p.name for p in (repo / "specs").glob("*.yaml"))
    assert files == ["api.example.com.yaml", f"www.example.com-{ids[2]}.yaml", "www.example.com.yaml"]
    written = yaml.safe_load((repo / "specs" / "www.example.com.yaml").read_text())
    assert written["allow_duplicate_common_name"] is True and set(written["sans"]) == {"a.example.com", "www.example.com"}
    assert "validation" not in written and "auto_approve_warnings" not in written  # left to defaults
    entries = StateStore(repo / "state" / "reconcile-state.json").read().entries
    assert {e.enrollment_id for e in entries.values()} == set(ids)
    ignored = (repo / ".gitignore").read_text().splitlines()  # a new repository: the state's working files
    for line in ("/state/reconcile-state.json.lock", "/state/reconcile-state.json.lock.info", "/state/**/.*.tmp",
                 "/state/**/*.backup"):
        assert line in ignored, ignored
    plan = run(repo, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    (repo / ".gitignore").write_text("/state/reconcile-state.json.lock\n")  # the user's own file: never edited
    again = run(repo, "import", "--all")
    assert again.exit_code == 0 and "0 imported, 3 skipped" in again.stdout and "already managed as" in again.stderr
    assert "does not ignore the state's working files; add: /state/reconcile-state.json.lock.info" in again.stderr
    assert (repo / ".gitignore").read_text() == "/state/reconcile-state.json.lock\n"
    spec_file = repo / "specs" / "api.example.com.yaml"
    data = yaml.safe_load(spec_file.read_text())
    data["sans"] = ["api.example.com", "api2.example.com"]
    spec_file.write_text(yaml.safe_dump(data))
    edited = run(repo, "plan", "--detailed-exitcode", "--format", "json")
    assert edited.exit_code == 2, edited.output
    actions = json.loads(edited.stdout)["actions"]
    assert [(a["name"], a["kind"]) for a in actions] == [("api.example.com", "update")]
    assert [c["path"] for c in actions[0]["changes"]] == ["sans"]


def test_import_needs_ids_or_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, monkeypatch)
    result = run(repo, "import")
    assert result.exit_code == 1 and "--enrollment-id" in result.output


CONFIG_WITH_COMMENTS = """\
# Our team's settings. Keep this comment.
default_contract: ctr_1-CLI
defaults:
  # certificates live in the core geography
  geography: core
  tech_contact:
    email: noc@example.com   # the NOC answers for every certificate
"""


def test_factor_defaults_moves_shared_values_into_reconcile_yaml_and_the_plan_stays_empty(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, monkeypatch)
    (repo / "reconcile.yaml").write_text(CONFIG_WITH_COMMENTS)
    anyio.run(_create_outside, repo)
    plain = tmp_path / "plain"  # the same import without factoring, for the size comparison
    assert run(repo, "import", "--all", "--out", str(plain)).exit_code == 0
    shutil.rmtree(repo / "state")  # forget the first import: start from no state

    result = run(repo, "import", "--all", "--factor-defaults")
    assert result.exit_code == 0, result.output
    assert "3 imported, 0 skipped" in result.stdout
    assert "admin_contact (4 fields)" in result.stdout and "organization (7 fields)" in result.stdout
    assert "kept in the specs (reconcile.yaml defaults hold another value): tech_contact.email" in result.stderr
    text = (repo / "reconcile.yaml").read_text()
    old_lines = CONFIG_WITH_COMMENTS.splitlines()
    kept = [line for line in text.splitlines() if line in old_lines]
    assert kept == old_lines  # every line, comments included, still there and in order
    config = yaml.safe_load(text)
    defaults = config["defaults"]
    assert defaults["admin_contact"] == PERSON and defaults["organization"] == ORG
    assert defaults["tech_contact"] == {**{k: v for k, v in PERSON.items() if k != "email"}, "email": "noc@example.com"}
    assert defaults["network_configuration"]["must_have_ciphers"] == "ak-akamai-2020q1"
    assert defaults["signature_algorithm"] == "SHA-256" and defaults["change_management"] is False
    assert config["default_contract"] == CONTRACT and "contract_id" not in defaults
    for spec_file in (repo / "specs").glob("*.yaml"):
        written = yaml.safe_load(spec_file.read_text())
        assert set(written) <= {"name", "type", "common_name", "sans", "tech_contact", "allow_duplicate_common_name"}
        assert written["tech_contact"] == {"email": PERSON["email"]}  # the conflicting default stays overridden
        assert spec_file.stat().st_size * 3 < (plain / spec_file.name).stat().st_size
    plan = run(repo, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output

    spec_file = repo / "specs" / "api.example.com.yaml"
    spec_file.write_text(spec_file.read_text() + "organization:\n  phone: +1 555 0199\n")
    edited = run(repo, "plan", "--detailed-exitcode", "--format", "json")
    assert edited.exit_code == 2, edited.output
    actions = json.loads(edited.stdout)["actions"]
    assert [(a["name"], a["kind"]) for a in actions] == [("api.example.com", "update")]
    assert [c["path"] for c in actions[0]["changes"]] == ["organization.phone"]


def test_factor_defaults_with_one_enrollment_factors_nothing_but_uses_existing_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, monkeypatch)  # its defaults hold the contacts and organization
    before = (repo / "reconcile.yaml").read_bytes()
    ids = anyio.run(_create_outside, repo)
    result = run(repo, "import", "--enrollment-id", str(ids[1]), "--factor-defaults")
    assert result.exit_code == 0, result.output
    assert "fewer than two enrollments" in result.stderr and "factored into" not in result.stdout
    assert (repo / "reconcile.yaml").read_bytes() == before
    written = yaml.safe_load((repo / "specs" / "api.example.com.yaml").read_text())
    assert not {"admin_contact", "tech_contact", "organization", "contract_id"} & set(written)
    assert written["network_configuration"]["must_have_ciphers"] == "ak-akamai-2020q1"  # not a default here
    assert run(repo, "plan", "--detailed-exitcode", "--target", "api.example.com").exit_code == 0


def test_import_never_writes_a_second_spec_for_an_enrollment_nor_overwrites_a_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, monkeypatch)
    ids = anyio.run(_create_outside, repo)  # www (+a), api, www again
    store = StateStore(repo / "state" / "reconcile-state.json")
    # www is already managed under a name of the team's choosing, by a spec without the duplicate flag.
    legacy = repo / "specs" / "legacy-www.yaml"
    legacy.write_text(yaml.safe_dump({"name": "legacy-www", "type": "dv", "common_name": "www.example.com",
                                      "sans": ["www.example.com", "a.example.com"]}))
    with store.lock("test"):
        store.write(store.read().with_entry("legacy-www", StateEntry(
            enrollment_id=ids[0], contract_id=CONTRACT, common_name="www.example.com")))
    # A file already carries the name import would choose for api.example.com.
    squatter = repo / "specs" / "api.example.com.yaml"
    squatter.write_text(yaml.safe_dump({"name": "other", "type": "dv", "common_name": "other.example.com"}))
    squatter_bytes = squatter.read_bytes()

    first = run(repo, "import", "--all")
    assert first.exit_code == 0, first.output
    assert "1 imported, 2 skipped" in first.stdout
    assert f"skipped enrollment {ids[0]} (www.example.com): already managed as legacy-www" in first.stderr
    assert (f"skipped enrollment {ids[2]} (www.example.com): www.example.com is also the CN of spec legacy-www "
            f"(enrollment {ids[0]}); to keep both, set allow_duplicate_common_name: true in specs/legacy-www.yaml"
            ) in first.stderr
    assert f"as api.example.com-{ids[1]}" in first.stdout and squatter.read_bytes() == squatter_bytes
    assert sorted(p.name for p in (repo / "specs").iterdir()) == [
        f"api.example.com-{ids[1]}.yaml", "api.example.com.yaml", "legacy-www.yaml"]

    legacy.write_text(legacy.read_text() + "allow_duplicate_common_name: true\n")
    second = run(repo, "import", "--all")
    assert second.exit_code == 0, second.output
    assert "1 imported, 2 skipped" in second.stdout and "as www.example.com:" in second.stdout
    assert yaml.safe_load((repo / "specs" / "www.example.com.yaml").read_text())["allow_duplicate_common_name"]
    bound = {e.enrollment_id: name for name, e in store.read().entries.items()}
    assert bound == {ids[0]: "legacy-www", ids[1]: f"api.example.com-{ids[1]}", ids[2]: "www.example.com"}
    plan = run(repo, "plan", "--format", "json")
    assert plan.exit_code == 0, plan.output
    assert [(a["name"], a["kind"]) for a in json.loads(plan.stdout)["actions"]] == [("other", "create")]


def test_import_skips_an_enrollment_an_unbound_spec_already_describes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, monkeypatch)
    ids = anyio.run(_create_outside, repo)
    (repo / "specs" / "mine.yaml").write_text(yaml.safe_dump({
        "name": "mine", "type": "dv", "common_name": "api.example.com"}))
    result = run(repo, "import", "--enrollment-id", str(ids[1]), "--enrollment-id", str(ids[1]))
    assert result.exit_code == 0, result.output
    assert "0 imported, 1 skipped" in result.stdout
    assert "spec mine (specs/mine.yaml:1) already describes api.example.com and is not bound yet" in result.stderr
    assert sorted(p.name for p in (repo / "specs").iterdir()) == ["mine.yaml"]
    plan = run(repo, "plan", "--format", "json")
    assert [(a["name"], a["kind"]) for a in json.loads(plan.stdout)["actions"]] == [("mine", "adopt")]
