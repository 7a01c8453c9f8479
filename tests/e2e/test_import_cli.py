"""Adopting enrollments made without the tool: import --all, then the plan is empty; an edit shows exactly itself."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
import yaml

from reconciler.cps.client import CpsClient
from reconciler.cps.mapping import spec_to_wire
from reconciler.sandbox.local import open_local_sandbox
from reconciler.spec.models import DvEnrollmentSpec
from reconciler.state.store import StateStore
from tests.observe.rig import ORG, PERSON, make_repo, run

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
    plan = run(repo, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    again = run(repo, "import", "--all")
    assert again.exit_code == 0 and "0 imported, 3 already managed" in again.stdout
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
    assert result.exit_code == 2 and "--enrollment-id" in result.output
