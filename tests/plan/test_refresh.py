"""Refresh + plan against the sandbox over real HTTPS: the acceptance scenarios of planning.

Empty account -> creates; after an (arranged) apply -> empty plan; a change behind the tool's
back -> drift; a stale saved plan -> refused. Request counts are checked too: refresh must stay
at one list per contract plus one read per pending change.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import httpx
import pytest

from reconciler.cps.client import CpsClient
from reconciler.cps.credentials import Credentials
from reconciler.cps.mapping import spec_to_wire
from reconciler.errors import StalePlan, TransportError
from reconciler.heap import HOLDS_FULL_PASSES
from reconciler.plan.desired import desired_from_loaded
from reconciler.plan.inputs import Observed
from reconciler.plan.model import Plan
from reconciler.plan.planner import PlanOptions, make_plan
from reconciler.plan.refresh import refresh
from reconciler.plan.saved import check_fresh, load_saved_plan, save_plan
from reconciler.sandbox.testing import SandboxServer
from reconciler.state.model import ChangeInFlight, State, StateEntry
from tests.sandbox.helpers import publish_in_edge_dns

from .conftest import CONTRACT, Repo, arrange_apply

pytestmark = pytest.mark.anyio


async def _plan(repo: Repo, client: CpsClient, **opts: object) -> tuple[Plan, Observed]:
    return await _plan_with(repo, client, repo.store.read(), **opts)


async def _plan_with(repo: Repo, client: CpsClient, state: State, **opts: object) -> tuple[Plan, Observed]:
    desired = desired_from_loaded(repo.load())
    observed = await refresh(client, desired, state)
    return make_plan(desired, observed, state, PlanOptions(**opts)), observed  # type: ignore[arg-type]


READ_ONLY = {"id", "location", "pendingChanges", "maxAllowedSanNames", "maxAllowedWildcardSanNames",
             "assignedSlots", "productionSlots", "stagingSlots", "autoRenewalStartTime"}


async def _edit_behind_back(client: CpsClient, eid: int, edit: dict[str, dict[str, str]]) -> None:
    """A PUT made by someone else (Control Center, another tool)."""
    wire = (await client.get_enrollment(eid)).to_wire()
    for section, values in edit.items():
        wire[section] = {**wire[section], **values}
    await client.update_enrollment(eid, {k: v for k, v in wire.items() if k not in READ_ONLY})


def _cps_paths(sandbox: SandboxServer) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sandbox.requests() if r["path"].startswith("/cps/")]


async def _apply_all(repo: Repo, client: CpsClient, sandbox: SandboxServer) -> dict[str, int]:
    return {s.name: await arrange_apply(client, sandbox, repo.store, s) for s in repo.load().specs}


async def test_empty_account_plans_creates_with_one_request(repo: Repo, client: CpsClient,
                                                            sandbox: SandboxServer) -> None:
    repo.write_spec("www", "www.example.com", sans=["example.com"])
    repo.write_spec("api", "api.example.com")
    sandbox.clear_requests()
    plan, observed = await _plan(repo, client)
    assert [a.key for a in plan.actions] == [("api", "create"), ("www", "create")]
    assert plan.summary_line() == "Plan: 2 to create, 0 to update, 0 to delete, 0 to continue."
    assert _cps_paths(sandbox) == ["GET /cps/v2/enrollments"] and observed.requests == 1


async def test_after_apply_the_plan_is_empty(repo: Repo, client: CpsClient, sandbox: SandboxServer) -> None:
    repo.write_spec("www", "www.example.com", sans=["example.com", "WWW2.example.com"])
    repo.write_spec("api", "api.example.com", network_configuration={"ocsp_stapling": "off"})
    await _apply_all(repo, client, sandbox)
    plan, _ = await _plan(repo, client)
    assert plan.actions == () and plan.blocked == () and plan.drift == ()
    assert not plan.has_changes and plan.unchanged == ("api", "www")


async def test_change_behind_the_tools_back_is_drift(repo: Repo, client: CpsClient, sandbox: SandboxServer) -> None:
    repo.write_spec("www", "www.example.com")
    ids = await _apply_all(repo, client, sandbox)
    await _edit_behind_back(client, ids["www"], {"networkConfiguration": {"ocspStapling": "off"},
                                                 "adminContact": {"firstName": "Mallory"}})
    sandbox.advance(6 * 3600)  # let the network change deploy: then nothing is pending
    plan, _ = await _plan(repo, client)
    (drift,) = plan.drift
    assert drift.kind == "changed"
    assert {(c.path, c.old, c.new) for c in drift.changes} == {
        ("admin_contact.first_name", "Mallory", "Ada"), ("network_configuration.ocsp_stapling", "off", "on")}
    (action,) = plan.actions
    assert action.key == ("www", "update-network") and action.reason == "drift"


async def test_deleted_enrollment_is_drift_and_recreated(repo: Repo, client: CpsClient,
                                                         sandbox: SandboxServer) -> None:
    repo.write_spec("www", "www.example.com")
    ids = await _apply_all(repo, client, sandbox)
    await client.delete_enrollment(ids["www"])
    sandbox.advance(2 * 3600)
    sandbox.clear_requests()
    plan, observed = await _plan(repo, client)
    assert observed.gone == {"www": ids["www"]}
    assert [(d.kind, d.enrollment_id) for d in plan.drift] == [("gone", ids["www"])]
    assert [a.key for a in plan.actions] == [("www", "create")]
    # the list did not have it, so one GET confirmed it is gone (404) rather than moved
    assert _cps_paths(sandbox) == ["GET /cps/v2/enrollments", f"GET /cps/v2/enrollments/{ids['www']}"]


async def test_existing_enrollment_is_offered_for_adoption_and_strangers_listed(
        repo: Repo, client: CpsClient, sandbox: SandboxServer) -> None:
    repo.write_spec("www", "www.example.com")
    repo.write_spec("other", "other.example.com")
    specs = repo.load().by_name()
    made = await client.create_enrollment(CONTRACT, spec_to_wire(specs["www"].spec))
    stranger = spec_to_wire(specs["other"].spec)
    stranger["csr"] = {**stranger["csr"], "cn": "stranger.example.com", "sans": ["stranger.example.com"]}
    stray = await client.create_enrollment(CONTRACT, stranger)
    plan, observed = await _plan(repo, client)
    # adopted, then shown waiting on its own pending change (CPS runs its safety checks)
    assert [a.key for a in plan.actions] == [("other", "create"), ("www", "adopt"), ("www", "in-progress")]
    assert plan.actions[1].enrollment_id == made.enrollment_id
    assert [u.enrollment_id for u in plan.unmanaged] == [stray.enrollment_id]
    assert observed.candidates["www"][0].changes[0].status == "pre-verification-safety-checks"


async def test_pending_changes_are_read_and_classified(repo: Repo, client: CpsClient,
                                                       sandbox: SandboxServer) -> None:
    repo.write_spec("www", "www.example.com")
    loaded = repo.load().specs[0]
    status = await client.create_enrollment(CONTRACT, spec_to_wire(loaded.spec))
    eid, cid = status.enrollment_id, status.change_ids[0]
    repo.store.save_entry("www", StateEntry(enrollment_id=eid, contract_id=CONTRACT,
                                            common_name="www.example.com", spec_hash=loaded.spec_hash))
    sandbox.advance(300)
    sandbox.clear_requests()
    plan, observed = await _plan(repo, client)
    assert _cps_paths(sandbox) == ["GET /cps/v2/enrollments", f"GET /cps/v2/enrollments/{eid}/changes/{cid}"]
    (action,) = plan.actions
    assert action.key == ("www", "continue") and action.pending is not None
    assert action.pending.waiting_for == ("lets-encrypt-challenges",) and action.pending.waits_on == "apply"
    publish_in_edge_dns(sandbox, await client.get_dv_challenges(eid, cid))  # where the sandbox looks
    await client.acknowledge_dv_challenges(eid, cid)
    sandbox.advance(200)
    plan, _ = await _plan(repo, client)
    assert [a.kind for a in plan.actions] == ["in-progress"] and not plan.has_changes
    assert plan.actions[0].pending.status == "deploy-staging"  # type: ignore[union-attr]


async def _pending_www(repo: Repo, client: CpsClient, sandbox: SandboxServer,
                       known_change: int | None) -> tuple[int, int]:
    """www created with its change pending; state records ``known_change`` as in flight (or none)."""
    repo.write_spec("www", "www.example.com")
    loaded = repo.load().specs[0]
    status = await client.create_enrollment(CONTRACT, spec_to_wire(loaded.spec))
    eid, cid = status.enrollment_id, status.change_ids[0]
    change = None if known_change is None else ChangeInFlight(change_id=known_change)
    repo.store.save_entry("www", StateEntry(enrollment_id=eid, contract_id=CONTRACT, common_name="www.example.com",
                                            spec_hash=loaded.spec_hash, change=change))
    sandbox.advance(300)
    sandbox.clear_requests()
    return eid, cid


async def test_a_change_state_knows_is_read_without_waiting_for_the_list(repo: Repo, client: CpsClient,
                                                                       sandbox: SandboxServer) -> None:
    """The list is held 2.5 s by the sandbox; the read of the change apply started is answered
    while it is still held (for a change state does not know, it has to wait: that read needs the id
    the list gives)."""
    eid, cid = await _pending_www(repo, client, sandbox, known_change=None)
    state = repo.store.read()
    repo.store.update_entry("www", change=ChangeInFlight(change_id=cid))
    sandbox.set_faults(latency=[{"path": "/cps/v2/enrollments", "method": "GET", "ms": 2500}])
    running = asyncio.ensure_future(_plan(repo, client))
    read = f"/cps/v2/enrollments/{eid}/changes/{cid}"
    while not any(r["path"] == read and r["status"] == 200 for r in sandbox.requests()):
        assert not running.done(), "refresh finished before its change read was answered"
        await asyncio.sleep(0.02)
    (listing,) = [r for r in sandbox.requests() if r["path"] == "/cps/v2/enrollments"]
    assert listing["status"] is None, "the change read waited for the list's answer"
    plan, observed = await running
    sandbox.clear_faults()
    assert observed.requests == 2 and _cps_paths(sandbox) == ["GET /cps/v2/enrollments", f"GET {read}"]
    # The same plan as a refresh that read the change after the list.
    plan_after_list, _ = await _plan_with(repo, client, state)
    assert plan.actions == plan_after_list.actions and plan.actions[0].key == ("www", "continue")


async def test_a_change_state_knows_that_ended_costs_one_read_and_changes_nothing(
        repo: Repo, client: CpsClient, sandbox: SandboxServer) -> None:
    cid_gone = 987654  # a change apply saw that has ended (and is gone) since
    eid, cid = await _pending_www(repo, client, sandbox, known_change=cid_gone)
    # The list held long enough that the early read's 404 surely comes back first.
    sandbox.set_faults(latency=[{"path": "/cps/v2/enrollments", "method": "GET", "ms": 400}])
    plan, observed = await _plan(repo, client)
    sandbox.clear_faults()
    gone = f"/cps/v2/enrollments/{eid}/changes/{cid_gone}"
    answered = sorted((r["path"], r["status"]) for r in sandbox.requests() if r["path"].startswith("/cps/"))
    assert answered == [("/cps/v2/enrollments", 200), (f"/cps/v2/enrollments/{eid}/changes/{cid}", 200),
                        (gone, 404)]  # the 404 of a change no longer pending is not an error
    assert observed.requests == 3
    assert observed.bound["www"].changes[0].change_id == cid and plan.actions[0].key == ("www", "continue")


async def test_stale_saved_plan_is_refused(repo: Repo, client: CpsClient, sandbox: SandboxServer,
                                           tmp_path: Path) -> None:
    repo.write_spec("www", "www.example.com")
    ids = await _apply_all(repo, client, sandbox)
    repo.write_spec("www", "www.example.com", sans=["new.example.com"])
    plan, _ = await _plan(repo, client)
    assert [a.key for a in plan.actions] == [("www", "update")]
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    saved = load_saved_plan(path)
    desired = desired_from_loaded(repo.load())
    hashes = {d.name: d.spec_hash for d in desired}

    state = repo.store.read()
    assert check_fresh(saved, state, await refresh(client, desired, state), hashes) == []

    # CPS moves behind the plan's back: a contact edit (no change opened) alters the enrollment.
    await _edit_behind_back(client, ids["www"], {"techContact": {"phone": "+1-555-0199"}})
    reasons = check_fresh(saved, state, await refresh(client, desired, state), hashes)
    assert reasons == [f"www: enrollment {ids['www']} changed in CPS since the plan was made"]
    with pytest.raises(StalePlan, match="changed in CPS"):
        raise StalePlan(reasons)

    # Another apply wrote state since: the serial no longer matches either.
    repo.store.update_entry("www", last_refresh=None, spec_hash="other")
    later = repo.store.read()
    assert any("serial" in r for r in check_fresh(saved, later, await refresh(client, desired, later), hashes))


MOCK_CREDENTIALS = Credentials(host="akab-test.luna.akamaiapis.net", client_token="akab-ct",
                               client_secret="c2VjcmV0", access_token="akab-at")


async def test_a_malformed_enrollment_nothing_manages_does_not_stop_the_plan(repo: Repo) -> None:
    """The list is used as sent and only what the plan looks at is validated: a stranger CPS sends
    in an odd shape is listed as unmanaged (without a CN) instead of failing the whole refresh."""
    repo.write_spec("www", "www.example.com")

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/cps/v2/enrollments", request.url
        return httpx.Response(200, json={"enrollments": [{"id": 7, "csr": "not an object"},
                                                         {"id": 8, "csr": {"cn": 42}}]})

    async with CpsClient(MOCK_CREDENTIALS, transport=httpx.MockTransport(handler)) as client:
        plan, observed = await _plan(repo, client)
    assert [a.key for a in plan.actions] == [("www", "create")]
    assert [(u.enrollment_id, u.common_name) for u in observed.unmanaged] == [(7, ""), (8, "")]


async def test_a_malformed_pending_change_of_a_managed_enrollment_is_a_transport_error(repo: Repo) -> None:
    repo.write_spec("www", "www.example.com")
    repo.store.save_entry("www", StateEntry(enrollment_id=7, contract_id=CONTRACT, common_name="www.example.com"))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"enrollments": [
            {"id": 7, "csr": {"cn": "www.example.com"}, "pendingChanges": [{"changeType": "new-certificate"}]}]})

    async with CpsClient(MOCK_CREDENTIALS, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(TransportError, match="does not fit Enrollment"):
            await _plan(repo, client)


@pytest.mark.skipif(not HOLDS_FULL_PASSES, reason="incremental collector: no full pass to hold")
async def test_no_full_garbage_collection_runs_while_refresh_reads(repo: Repo) -> None:
    """A full pass over the heap stalls every answer in flight (70 ms measured at N = 1,000):
    refresh holds it off while it reads, and gives the collector its threshold back after."""
    repo.write_spec("www", "www.example.com")
    before = gc.get_threshold()
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(gc.get_threshold()[2])
        return httpx.Response(200, json={"enrollments": []})

    async with CpsClient(MOCK_CREDENTIALS, transport=httpx.MockTransport(handler)) as client:
        await _plan(repo, client)
    assert seen and all(full > 10**6 for full in seen)
    assert gc.get_threshold() == before
