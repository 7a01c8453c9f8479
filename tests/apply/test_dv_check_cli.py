"""The propagation check through the CLI: `reconcile apply` against a sandbox served over HTTPS,
`reconcile challenges --check` and `--confirm-published`, with BIND as the nameserver."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml

from reconciler.apply.publishers.base import ChallengeRecord
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from tests.e2e.test_apply_e2e import ORG, PERSON, ClockPump, cli

from .conftest import BindServer
from .test_dv_check import ACK, rfc2136


def write_repo(root: Path, specs: list[dict[str, Any]], **config: Any) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "reconcile.yaml").write_text(yaml.safe_dump({
        "default_contract": "ctr_1-CHECK",
        "defaults": {"admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG}, **config}))
    (root / "specs").mkdir(exist_ok=True)
    for spec in specs:
        (root / "specs" / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))


def dv(name: str, domain: str, **validation: Any) -> dict[str, Any]:
    return {"name": name, "type": "dv", "common_name": domain, "sans": [domain],
            "validation": {"method": "dns-01", **validation}}


def acks(server: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in server.requests() if r["method"] == "POST" and str(r["path"]).endswith(ACK)]


def ledger(root: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "state" / "challenges" / f"{name}.json").read_text())
    return data


def publish(server: BindServer, root: Path, name: str) -> None:
    records = [ChallengeRecord.from_data(c) for c in ledger(root, name)["challenges"]]
    assert asyncio.run(rfc2136(server).publish(records)).ready


def test_hook_publishing_nowhere_waits_exit_3_then_publishing_completes(tmp_path: Path,
                                                                        bind_server: BindServer) -> None:
    repo = tmp_path / "repo"
    # check: true against a sandbox (off by default there); the BIND server stands in for the
    # zone's nameservers.
    write_repo(repo, [dv("www", "www.example.test", publisher="hook", hook={"publish": "true"}, check=True)],
               dns_check={"nameservers": [bind_server.where], "timeout": "1s", "interval": "100ms"})
    with SandboxServer(engine=EngineConfig(create_throttle_seconds=0, validation_policy="trust-ack")) as server, ClockPump(server):
        first = cli(server, repo, "apply", "--auto-approve", "--timeout", "30")
        assert first.returncode == 3, first.stdout + first.stderr
        assert "www: waiting - waiting for _acme-challenge.www.example.test to be served everywhere" in first.stdout
        assert (f"_acme-challenge.www.example.test.: not served by 1 of 1 nameserver(s): {bind_server.where}: "
                "NXDOMAIN") in first.stdout
        assert "waiting for 1/1 nameservers to serve _acme-challenge.www.example.test" in first.stderr  # progress
        assert acks(server) == []

        table = cli(server, repo, "challenges", "www", "--check")
        assert table.returncode == 3, table.stdout + table.stderr
        header, row, summary = table.stdout.splitlines()
        assert header.split() == ["RECORD", "EXPECTED", "SERVER", "ANSWER"]
        value = ledger(repo, "www")["challenges"][0]["value"]
        assert row.split() == ["_acme-challenge.www.example.test.", value, bind_server.where, "NXDOMAIN"]
        assert summary.startswith("0 of 1 record(s) visible")

        publish(bind_server, repo, "www")  # the person fixes what the hook did not do
        ok = cli(server, repo, "challenges", "www", "--check", "--format", "json")
        assert ok.returncode == 0 and json.loads(ok.stdout)["visible"] is True
        second = cli(server, repo, "apply", "--auto-approve", "--timeout", "30")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "www: done - deployed" in second.stdout or "No changes" in second.stdout
        assert len(acks(server)) == 1
        assert cli(server, repo, "plan", "--detailed-exitcode").returncode == 0


def test_manual_without_check_needs_confirm_published(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_repo(repo, [dv("blog", "blog.example.test", publisher="manual")])
    with SandboxServer(engine=EngineConfig(create_throttle_seconds=0, validation_policy="trust-ack")) as server, ClockPump(server):
        first = cli(server, repo, "apply", "--auto-approve", "--timeout", "30")
        assert first.returncode == 3 and "waiting for DNS publication of 1 challenge(s)" in first.stdout
        assert "reconcile challenges blog --confirm-published" in first.stdout
        # Another apply (a CI push) is not a confirmation.
        second = cli(server, repo, "apply", "--auto-approve", "--timeout", "30")
        assert second.returncode == 3 and acks(server) == []

        confirm = cli(server, repo, "challenges", "blog", "--confirm-published")
        assert confirm.returncode == 0, confirm.stderr
        assert "confirmed: 1 challenge(s)" in confirm.stderr and "state/challenges/blog.json" in confirm.stderr
        assert ledger(repo, "blog")["confirmed_at"]
        third = cli(server, repo, "apply", "--auto-approve", "--timeout", "30")
        assert third.returncode == 0, third.stdout + third.stderr
        assert len(acks(server)) == 1


def test_confirm_published_refuses_what_it_cannot_vouch_for(tmp_path: Path, bind_server: BindServer) -> None:
    repo = tmp_path / "repo"
    write_repo(repo, [dv("blog", "blog.example.test", publisher="manual"),
                      dv("www", "www.example.test", publisher="hook", hook={"publish": "true"})],
               dns_check={"nameservers": [bind_server.where]})
    with SandboxServer(engine=EngineConfig(create_throttle_seconds=0, validation_policy="trust-ack")) as server, ClockPump(server):
        # Nothing recorded yet.
        (repo / "state").mkdir(parents=True, exist_ok=True)
        assert cli(server, repo, "apply", "--auto-approve", "--timeout", "30").returncode == 3
        hook = cli(server, repo, "challenges", "www", "--confirm-published")
        assert hook.returncode == 1 and "--confirm-published is for the manual one" in hook.stderr
        # With --check, a confirmation is recorded only for what is served.
        unserved = cli(server, repo, "challenges", "blog", "--check", "--confirm-published")
        assert unserved.returncode == 3 and "not confirmed" in unserved.stderr
        assert ledger(repo, "blog")["confirmed_at"] is None
        publish(bind_server, repo, "blog")
        served = cli(server, repo, "challenges", "blog", "--check", "--confirm-published")
        assert served.returncode == 0 and ledger(repo, "blog")["confirmed_at"]
