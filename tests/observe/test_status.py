"""`reconcile status` on a mixed estate through the in-process --sandbox, in all three formats."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from reconciler.cli.wiring import LocalSandboxClient
from reconciler.config import load_config
from reconciler.cps.client import CpsClient
from reconciler.observe.status import collect_status
from reconciler.sandbox.local import open_local_sandbox
from reconciler.spec.loader import load_specs
from reconciler.state.store import StateStore
from tests.sandbox.helpers import DEMO_PUBLISH

from .rig import make_repo, run, write_spec

HOOK = {"publisher": "hook", "hook": {"publish": DEMO_PUBLISH}}


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deployed (www), pending DV by hand (manual), waiting for upload (shop), planned-only (new)."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        repo = make_repo(tmp_path_factory.mktemp("estate"), monkeypatch)
        write_spec(repo, "www", sans=["www.example.com", "a.example.com", "b.example.com"], validation=HOOK)
        write_spec(repo, "manual", validation={"method": "dns-01", "publisher": "manual"})
        write_spec(repo, "shop", type="third-party")
        assert run(repo, "apply", "--auto-approve").exit_code == 3
        write_spec(repo, "new", validation=HOOK)
        yield repo
    finally:
        monkeypatch.undo()


def rows(repo: Path) -> dict[str, Any]:
    result = run(repo, "status", "--format", "json")
    assert result.exit_code == 0, result.output
    return {r["name"]: r for r in json.loads(result.stdout)["enrollments"]}


def test_json_rows_for_every_spec_and_state_entry(estate: Path) -> None:
    data = rows(estate)
    assert sorted(data) == ["manual", "new", "shop", "www"]
    www = data["www"]
    assert www["type"] == "dv" and www["common_name"] == "www.example.com" and www["san_count"] == 3
    assert www["pending"] is None and www["drift"] == "none"
    assert www["staging_days"] is not None and www["production_days"] is not None and www["production_days"] > 0
    manual = data["manual"]
    assert manual["pending"].startswith("new-certificate #") and manual["production_days"] is None
    assert "lets-encrypt-challenges" in manual["waiting_for"]
    shop = data["shop"]
    assert shop["type"] == "third-party" and "third-party-certificate" in shop["waiting_for"]
    new = data["new"]
    assert new["enrollment_id"] is None and new["drift"] == "plan: create" and new["pending"] is None


def test_next_renewal_is_cps_auto_renewal_for_dv_and_none_for_third_party_without_a_window(estate: Path) -> None:
    data = rows(estate)
    www = data["www"]
    assert www["renewal"] == "cps" and www["next_renewal"] is not None and not www["not_renewing"]
    expiry = datetime.fromisoformat(www["production_expiry"])
    # the sandbox's autoRenewalStartTime: 20 days before the DV certificate expires
    assert abs(expiry - datetime.fromisoformat(www["next_renewal"]) - timedelta(days=20)) < timedelta(minutes=1)
    assert www["production_not_before"] < www["production_expiry"] and www["expired"] == []
    shop = data["shop"]
    assert shop["renewal"] == "none" and shop["not_renewing"] is True and shop["next_renewal"] is None
    assert shop["waits_on"] == "person" and "reconcile csr shop" in shop["next_step"]
    assert data["manual"]["waits_on"] == "person" and data["new"]["waits_on"] is None
    text = run(estate, "status").stdout
    assert "none: NOT RENEWING" in text and "(cps)" in text


def test_text_and_markdown_show_the_same_rows(estate: Path) -> None:
    text = run(estate, "status")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "ID", "TYPE"] and len(lines) == 5
    assert any(line.startswith("shop ") and "third-party-certificate" in line for line in lines)
    markdown = run(estate, "status", "--format", "markdown").stdout.splitlines()
    assert markdown[0].startswith("| NAME | ID |") and markdown[1].startswith("|---|")
    assert len(markdown) == 6 and any(line.startswith("| www |") for line in markdown)


def test_expiring_within_exits_1_and_highlights(estate: Path) -> None:
    days = rows(estate)["www"]["production_days"]
    calm = run(estate, "status", "--expiring-within", str(days))
    assert calm.exit_code == 0, calm.output
    assert "!" not in calm.stdout
    alarmed = run(estate, "status", "--expiring-within", str(days + 1))
    assert alarmed.exit_code == 1 and "www" in alarmed.stderr
    assert f"{days}d!" in alarmed.stdout
    marked = run(estate, "status", "--format", "markdown", "--threshold", str(days + 1))
    assert f"**{days}d** :warning:" in marked.stdout and marked.exit_code == 0


async def _edit_outside(repo: Path, eid: int) -> None:
    sandbox = open_local_sandbox(repo / ".reconcile" / "sandbox")
    try:
        async with CpsClient(sandbox.credentials, base_url=sandbox.base_url, transport=sandbox.transport) as client:
            body = (await client.get_enrollment(eid)).to_wire()
            body["techContact"]["email"] = "someone-else@example.com"
            await client.update_enrollment(eid, body)
    finally:
        sandbox.close()


def test_an_edit_made_outside_reconciler_shows_as_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, monkeypatch)
    write_spec(repo, "www", validation=HOOK)
    assert run(repo, "apply", "--auto-approve").exit_code == 0
    eid = StateStore(repo / "state" / "reconcile-state.json").read().entries["www"].enrollment_id
    assert eid is not None and rows(repo)["www"]["drift"] == "none"
    anyio.run(_edit_outside, repo, eid)
    drift = rows(repo)["www"]["drift"]
    assert drift.startswith("changed: ") and "tech_contact" in drift, drift
    # The same drift in the two formats for people.
    text = run(repo, "status").stdout.splitlines()
    assert any(line.startswith("www ") and "changed" in line for line in text), text
    markdown = run(repo, "status", "--format", "markdown").stdout.splitlines()
    assert any(line.startswith("| www |") and "changed" in line for line in markdown), markdown


async def _status_requests(repo: Path) -> list[str]:
    config = load_config(repo / "reconcile.yaml")
    specs, state = load_specs(config), StateStore(config.state_path).read()
    sandbox = open_local_sandbox(repo / ".reconcile" / "sandbox")
    async with LocalSandboxClient(sandbox) as client:
        await collect_status(specs, state, client)
        return [f"{r['method']} {r['path']}" for r in sandbox.app.runtime.requests]


def test_status_reads_both_networks_with_one_request_per_enrollment(estate: Path) -> None:
    sent = anyio.run(_status_requests, estate)
    deployments = [s for s in sent if "/deployments" in s]
    bound = [r for r in rows(estate).values() if r["enrollment_id"] is not None]
    assert len(deployments) == len(bound) == 3, sent
    assert all(s.endswith("/deployments") for s in deployments), sent  # not /staging and /production
