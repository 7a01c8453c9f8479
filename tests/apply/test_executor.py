"""The executor over the real pipeline (specs on disk -> refresh -> plan -> apply) against the
in-process sandbox, with poll sleeps that move the sandbox's virtual clock."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from reconciler.apply.executor import ApplyOptions, ApplyResult, Executor
from reconciler.apply.publishers.ledger import ChallengeLedger
from reconciler.config import load_config
from reconciler.cps.mapping import spec_to_wire
from reconciler.plan.pipeline import PlanResult, build_plan
from reconciler.plan.planner import PlanOptions
from reconciler.sandbox.engine import EngineConfig
from reconciler.spec.loader import load_specs

from .sandbox_rig import CONTRACT, ORG, PERSON, SIGNER, Rig, sandbox_rig

pytestmark = pytest.mark.anyio

HOOK = f"{sys.executable} -c \"import os; open('published.txt', 'a').write(os.environ['RECONCILE_DOMAIN'] + '\\n')\""


def write_repo(root: Path, specs: list[dict[str, Any]]) -> None:
    (root / "reconcile.yaml").write_text(yaml.safe_dump({
        "default_contract": CONTRACT,
        "defaults": {"admin_contact": PERSON, "tech_contact": PERSON, "organization": ORG},
    }))
    (root / "specs").mkdir(exist_ok=True)
    for old in (root / "specs").glob("*.yaml"):
        old.unlink()
    for spec in specs:
        (root / "specs" / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))


def dv(name: str = "www", sans: list[str] | None = None, publisher: str = "hook", **extra: Any) -> dict[str, Any]:
    validation: dict[str, Any] = {"method": "dns-01", "publisher": publisher}
    if publisher == "hook":
        validation["hook"] = {"publish": HOOK}
    return {"name": name, "type": "dv", "common_name": f"{name}.example.com",
            "sans": sans if sans is not None else [f"{name}.example.com"], "validation": validation, **extra}


def tp(name: str = "shop", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "third-party", "common_name": f"{name}.example.com",
            "sans": [f"{name}.example.com", f"pay.{name}.example.com"], "signer": {"command": SIGNER}, **extra}


async def plan_for(rig: Rig, **options: Any) -> PlanResult:
    config = load_config(rig.root / "reconcile.yaml")
    return await build_plan(load_specs(config), rig.store.read(), rig.client, PlanOptions(**options))


async def apply(rig: Rig, result: PlanResult | None = None, **options: Any) -> ApplyResult:
    result = result or await plan_for(rig)
    config = load_config(rig.root / "reconcile.yaml")
    specs = {s.name: s.spec for s in load_specs(config).specs}
    executor = Executor(client=rig.client, journal=rig.journal, specs=specs, root=config.root,
                        state_dir=config.state_path.parent,
                        options=ApplyOptions(poll=rig.poll(), **options), report=lambda n, s, d: rig.steps.append((n, s, d)))
    return await executor.run(result.plan)


async def enrollments(rig: Rig) -> list[Any]:
    return await rig.client.list_enrollments(CONTRACT)


async def test_dv_and_dual_stack_third_party_deploy_in_one_apply_then_plan_is_empty(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        write_repo(tmp_path, [dv(), tp()])
        first = await plan_for(rig)
        assert sorted((a.name, a.kind) for a in first.plan.actions) == [("shop", "create"), ("www", "create")]
        result = await apply(rig, first)
        assert [(o.name, o.status) for o in result.outcomes] == [("shop", "done"), ("www", "done")], result
        assert result.exit_code == 0
        assert sorted(e.csr.cn for e in await enrollments(rig)) == ["shop.example.com", "www.example.com"]
        after = await plan_for(rig)
        assert not after.plan.has_changes and not after.plan.actions, after.plan.to_data()
        assert sorted(after.plan.unchanged) == ["shop", "www"]
        state = rig.store.read()
        assert all(e.change is None and e.intent is None for e in state.entries.values())
        assert set(state.entries["shop"].certificate_fingerprints) == {"rsa", "ecdsa"}
        assert (tmp_path / "published.txt").read_text().split() == ["www.example.com"]


async def test_san_change_revalidates_and_redeploys(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        write_repo(tmp_path, [dv()])
        assert (await apply(rig)).exit_code == 0
        write_repo(tmp_path, [dv(sans=["www.example.com", "api.example.com"])])
        planned = await plan_for(rig)
        assert [(a.kind, a.new_certificate) for a in planned.plan.actions] == [("update", True)]
        result = await apply(rig, planned)
        assert result.exit_code == 0, result
        published = (tmp_path / "published.txt").read_text().split()
        assert "api.example.com" in published
        eid = rig.store.read().entries["www"].enrollment_id
        assert eid is not None
        production = await rig.client.get_production_deployment(eid)
        assert production is not None and production.primary_certificate is not None
        cert = x509.load_pem_x509_certificate((production.primary_certificate.certificate or "").encode())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(names.get_values_for_type(x509.DNSName)) == {"www.example.com", "api.example.com"}
        assert not (await plan_for(rig)).plan.has_changes


async def test_manual_dv_waits_with_exit_3_then_finishes(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        write_repo(tmp_path, [dv(publisher="manual")])
        first = await apply(rig)
        assert first.exit_code == 3 and first.outcomes[0].status == "waiting"
        assert (tmp_path / "state" / "challenges" / "www.json").exists()
        assert (tmp_path / "state" / "challenges" / "www.zone").exists()
        planned = await plan_for(rig)
        assert [a.kind for a in planned.plan.actions] == ["in-progress"]
        # Another run is not a confirmation (in CI every push runs apply): still waiting, and
        # nothing was acknowledged.
        rig.app.runtime.requests.clear()
        second = await apply(rig, planned)
        assert second.exit_code == 3, second
        assert "reconcile challenges www --confirm-published" in " ".join(second.outcomes[0].details)
        assert not [r for r in rig.app.runtime.requests if r["path"].endswith("lets-encrypt-challenges-completed")]
        # What `reconcile challenges www --confirm-published` does.
        assert ChallengeLedger(tmp_path / "state" / "challenges", "www").confirm() is not None
        third = await apply(rig)
        assert third.exit_code == 0, third
        assert not (await plan_for(rig)).plan.has_changes


async def test_interrupted_create_is_found_by_cn_not_created_again(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        write_repo(tmp_path, [tp()])
        spec = load_specs(load_config(tmp_path / "reconcile.yaml")).specs[0].spec
        # A run that recorded its intent and whose POST landed, then died before saving the id.
        rig.journal.bind("shop", contract_id=CONTRACT, common_name=spec.common_name, prevent_destroy=False)
        rig.journal.intent("shop", "creating")
        await rig.client.create_enrollment(CONTRACT, spec_to_wire(spec))
        planned = await plan_for(rig)
        assert [(a.kind, a.reason) for a in planned.plan.actions][0] == ("adopt", "resume-create")
        result = await apply(rig, planned)
        assert result.exit_code == 0, result
        assert len(await enrollments(rig)) == 1
        assert not (await plan_for(rig)).plan.has_changes


async def test_create_after_intent_without_refresh_looks_up_by_cn(tmp_path: Path) -> None:
    """Even a plan that did not refresh (so it says create) must not create a duplicate."""
    async with sandbox_rig(tmp_path) as rig:
        write_repo(tmp_path, [tp()])
        config = load_config(tmp_path / "reconcile.yaml")
        spec = load_specs(config).specs[0].spec
        rig.journal.bind("shop", contract_id=CONTRACT, common_name=spec.common_name, prevent_destroy=False)
        rig.journal.intent("shop", "creating")
        await rig.client.create_enrollment(CONTRACT, spec_to_wire(spec))
        offline = await build_plan(load_specs(config), rig.store.read(), None, PlanOptions())
        assert [a.kind for a in offline.plan.actions] == ["create"]
        result = await apply(rig, offline)
        assert result.exit_code == 0, result
        assert len(await enrollments(rig)) == 1


async def test_delete_only_when_allowed(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        write_repo(tmp_path, [tp(dual_stack=False)])
        assert (await apply(rig)).exit_code == 0
        write_repo(tmp_path, [])
        refused = await plan_for(rig)
        assert [b.kind for b in refused.plan.blocked] == ["delete"] and not refused.plan.actions
        assert (await apply(rig, refused)).exit_code == 1  # blocked: not applied, like any blocked action
        assert len(await enrollments(rig)) == 1
        csr = tmp_path / "state" / "csr" / "shop.rsa.csr.pem"
        assert csr.is_file()  # written by the upload step
        # --no-wait: CPS accepted the delete and removes the deployed enrollment later; until then
        # state keeps it claimed (intent "deleting"), so no plan can offer it for adoption.
        allowed = await plan_for(rig, allow_delete=True)
        result = await apply(rig, allowed, no_wait=True)
        assert result.exit_code == 0 and result.outcomes[0].status == "submitted", result
        entry = rig.store.read().entries["shop"]
        assert entry.intent is not None and entry.intent.op == "deleting"
        dying = await plan_for(rig)
        assert [(a.kind, a.reason) for a in dying.plan.actions] == [("in-progress", "deleting")]
        assert not dying.plan.has_changes
        # The spec coming back meanwhile never binds the dying enrollment.
        write_repo(tmp_path, [tp(dual_stack=False)])
        back = await plan_for(rig)
        assert [(b.kind, b.reason) for b in back.plan.blocked] == [("create", "being-deleted")]
        write_repo(tmp_path, [])
        # The next apply waits (the rig's polls move the sandbox clock) and forgets it once gone.
        finished = await apply(rig, dying)
        assert finished.exit_code == 0 and finished.outcomes[0].message == "deleted enrollment 10000"
        assert any(step == "wait for CPS to remove the enrollment" for _, step, _ in rig.steps)
        assert "shop" not in rig.store.read().entries
        assert not csr.exists()  # the working files of a forgotten entry go with it
        assert not (tmp_path / "state" / "reconcile-state" / "shop.json").exists()
        assert await enrollments(rig) == []
        assert not (await plan_for(rig)).plan.actions


async def test_parallel_enrollments_with_bounded_parallelism_and_create_throttle(tmp_path: Path) -> None:
    # CPS's default: one create per contract every 5 minutes; throttled creates are retried.
    async with sandbox_rig(tmp_path, EngineConfig(validation_policy="trust-ack")) as rig:
        write_repo(tmp_path, [dv(name=f"site{i}") for i in range(4)])
        result = await apply(rig, parallelism=2)
        assert result.exit_code == 0, result
        assert [o.name for o in result.outcomes] == ["site0", "site1", "site2", "site3"]
        assert len(await enrollments(rig)) == 4
        assert not (await plan_for(rig)).plan.has_changes
        assert any(step == "create throttled by CPS" for _, step, _ in rig.steps)


async def test_third_party_san_change_gets_a_new_signature_and_upload(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        write_repo(tmp_path, [tp()])
        assert (await apply(rig)).exit_code == 0
        before = dict(rig.store.read().entries["shop"].certificate_fingerprints)
        changed = tp(sans=["shop.example.com", "pay.shop.example.com", "new.shop.example.com"])
        write_repo(tmp_path, [changed])
        result = await apply(rig)
        assert result.exit_code == 0, result
        after = rig.store.read().entries["shop"].certificate_fingerprints
        assert set(after) == {"rsa", "ecdsa"} and not set(after.values()) & set(before.values())
        uploads = [r for r in rig.app.runtime.requests if r["path"].endswith("third-party-cert-and-trust-chain")]
        assert len(uploads) == 2
        assert not (await plan_for(rig)).plan.has_changes

        # Without a signer, the old files belong to the old CSRs: apply waits for new signatures.
        unsigned = {k: v for k, v in tp(sans=["shop.example.com", "pay.shop.example.com", "new.shop.example.com",
                                                 "other.shop.example.com"]).items() if k != "signer"}
        write_repo(tmp_path, [unsigned])
        waiting = await apply(rig)
        assert waiting.exit_code == 3, waiting
        assert "waiting for signed certificate(s): RSA, ECDSA" == waiting.outcomes[0].message


async def test_san_removal_warning_waits_unless_its_code_is_auto_approved(tmp_path: Path) -> None:
    async with sandbox_rig(tmp_path) as rig:
        write_repo(tmp_path, [dv(sans=["www.example.com", "old.example.com"])])
        assert (await apply(rig)).exit_code == 0
        write_repo(tmp_path, [dv(sans=["www.example.com"])])
        held = await apply(rig)
        assert held.exit_code == 3 and "pre-verification warnings" in held.outcomes[0].message
        assert any(d.startswith("SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT") for d in held.outcomes[0].details)
        write_repo(tmp_path, [dv(sans=["www.example.com"], auto_approve_warnings=["SANS_REMOVED_REQUIRE_ACKNOWLEDGEMENT"])])
        done = await apply(rig)
        assert done.exit_code == 0, done
        assert not (await plan_for(rig)).plan.has_changes


@pytest.mark.parametrize("made_seconds_ago,lists_first", [(None, False), (5, False), (120, True)],
                         ids=["in-process-plan", "fresh-plan", "plan-two-minutes-old"])
async def test_create_lists_the_contract_first_only_when_the_plans_refresh_is_stale(
        tmp_path: Path, made_seconds_ago: int | None, lists_first: bool) -> None:
    """Within a minute of the refresh the plan's same-CN facts stand for the list a create makes
    before its POST (to settle a lost answer); an older plan lists again."""
    async with sandbox_rig(tmp_path) as rig:
        write_repo(tmp_path, [dv()])
        now = None if made_seconds_ago is None else (
            datetime.now(UTC) - timedelta(seconds=made_seconds_ago)).isoformat()
        planned = await plan_for(rig, now=now)
        assert planned.plan.created_at == now
        rig.app.runtime.requests.clear()
        result = await apply(rig, planned)
        assert [(o.name, o.status) for o in result.outcomes] == [("www", "done")], result
        sent = [(r["method"], r["path"]) for r in rig.app.runtime.requests]
        create = sent.index(("POST", "/cps/v2/enrollments"))
        lists = [i for i, call in enumerate(sent) if call == ("GET", "/cps/v2/enrollments")]
        assert [i for i in lists if i < create] == ([create - 1] if lists_first else []), sent[:create + 1]
        assert len(await enrollments(rig)) == 1
