"""Fault and latency rules: matching, counts, phases, seeded probability, admin-body parsing."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from reconciler.sandbox.app import SandboxApp, create_app
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.faults import FaultPlan, FaultRule, LatencyRule
from reconciler.sandbox.media import media_type as V
from tests.sandbox.helpers import dv_body, schema_errors, signed_client


def test_rule_matches_method_and_path_glob() -> None:
    rule = FaultRule(path="/cps/v2/enrollments/*", method="get")
    assert rule.matches("GET", "/cps/v2/enrollments/10000")
    assert not rule.matches("PUT", "/cps/v2/enrollments/10000")
    assert not rule.matches("GET", "/cps/v2/enrollments")


def test_route_template_placeholders_match_exactly_one_segment() -> None:
    enrollment = FaultRule(path="/cps/v2/enrollments/{enrollmentId}")
    assert enrollment.matches("GET", "/cps/v2/enrollments/10000")
    assert not enrollment.matches("GET", "/cps/v2/enrollments/10000/changes/7")
    assert not enrollment.matches("GET", "/cps/v2/enrollments")
    change = FaultRule(path="/cps/v2/enrollments/{enrollmentId}/changes/{changeId}")
    assert change.matches("GET", "/cps/v2/enrollments/1/changes/2")
    assert not change.matches("GET", "/cps/v2/enrollments/1/changes/2/input/info/third-party-csr")
    assert FaultRule(path="/cps/v2/enrollments/*").matches("GET", "/cps/v2/enrollments/1/changes/2")  # glob


def test_tag_limits_a_rule_to_requests_carrying_it() -> None:
    plan = FaultPlan([FaultRule(status=503, tag="cell-1")])
    assert plan.pick("GET", "/x", "before") is None
    assert plan.pick("GET", "/x", "before", "cell-2") is None
    assert plan.pick("GET", "/x", "before", "cell-1") is not None
    assert FaultPlan([FaultRule(status=503)]).pick("GET", "/x", "before", "any-tag") is not None


def test_count_limits_firings_to_the_first_n_matches() -> None:
    plan = FaultPlan([FaultRule(status=503, count=2, path="/a")])
    fired = [plan.pick("GET", "/a", "before") is not None for _ in range(4)]
    assert fired == [True, True, False, False]
    assert plan.pick("GET", "/b", "before") is None


def test_first_matching_rule_wins_then_the_next_takes_over() -> None:
    plan = FaultPlan([FaultRule(status=429, count=1), FaultRule(status=500, count=1)])
    assert [plan.pick("GET", "/x", "before").status for _ in range(2)] == [429, 500]  # type: ignore[union-attr]
    assert plan.pick("GET", "/x", "before") is None


def test_phase_separates_before_and_after_rules_and_truncate_is_always_after() -> None:
    plan = FaultPlan([FaultRule(action="drop", phase="after"), FaultRule(action="truncate", phase="before")])
    assert plan.pick("POST", "/x", "before") is None
    assert plan.pick("POST", "/x", "after").action == "drop"  # type: ignore[union-attr]
    assert plan.pick("POST", "/x", "after").action == "drop"  # type: ignore[union-attr]


def test_probability_is_deterministic_under_a_seed() -> None:
    def run(seed: int) -> list[bool]:
        plan = FaultPlan([FaultRule(probability=0.3)], seed=seed)
        return [plan.pick("GET", "/x", "before") is not None for _ in range(200)]

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first != other
    assert 30 < sum(first) < 90  # about 30% of 200


def test_latency_first_matching_rule_with_seeded_jitter() -> None:
    plan = FaultPlan(latency=[LatencyRule(ms=50, path="/cps/v2/enrollments"), LatencyRule(ms=10, jitter_ms=5)],
                     seed=1)
    assert plan.delay_seconds("GET", "/cps/v2/enrollments") == pytest.approx(0.05)
    delays = [plan.delay_seconds("GET", "/other") for _ in range(20)]
    assert all(0.010 <= d <= 0.015 for d in delays) and len(set(delays)) > 1


def test_admin_body_adds_rules_and_new_latency_wins() -> None:
    plan = FaultPlan(latency=[LatencyRule(ms=10)])
    plan.add({"rules": [{"action": "status", "status": 429, "retry_after": 2, "count": 1}],
              "latency": {"ms": 99}, "seed": 3})
    assert plan.rules[0].retry_after == 2 and plan.seed == 3
    assert plan.delay_seconds("GET", "/x") == pytest.approx(0.099)
    data = plan.to_json()
    assert data["rules"][0]["fired"] == 0 and len(data["latency"]) == 2
    plan.clear()
    assert plan.to_json() == {"rules": [], "latency": [], "seed": 3}


@pytest.mark.parametrize("body", [
    {"rules": [{"action": "explode"}]},
    {"rules": [{"phase": "during"}]},
    {"rules": [{"probability": 2}]},
    {"rules": [{"status": 42}]},
    {"rules": [{"count": -1}]},
    {"rules": [{"action": "timeout", "hold_ms": -1}]},
    {"rules": [{"bogus": 1}]},
    {"latency": [{"ms": -5}]},
    {"latency": [{"speed": 5}]},
    {"unknown": []},
])
def test_bad_admin_bodies_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultPlan().add(body)


# -- the same rules applied by the app, in process ----------------------------------------------

LIST = "/cps/v2/enrollments"
ACCEPT = {"Accept": V("enrollments.v12")}
CREATE = {"Accept": V("enrollment-status.v1"), "Content-Type": V("enrollment.v12")}


@pytest.fixture
def app() -> SandboxApp:
    return create_app(SandboxConfig(engine=EngineConfig(create_throttle_seconds=0)))


async def set_faults(app: SandboxApp, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://x") as admin:
        response = await admin.post("/_sandbox/faults", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.mark.anyio
async def test_status_fault_answers_a_problem_then_lets_requests_through(app: SandboxApp) -> None:
    await set_faults(app, {"rules": [{"path": LIST, "method": "GET", "status": 503, "count": 1}]})
    async with signed_client(app) as client:
        first = await client.get(LIST, params={"contractId": "1-A"}, headers=ACCEPT)
        second = await client.get(LIST, params={"contractId": "1-A"}, headers=ACCEPT)
    assert first.status_code == 503 and first.headers["content-type"] == "application/problem+json"
    assert schema_errors("problem", first.json()) == []
    assert second.status_code == 200
    assert [r["fault"] for r in app.runtime.requests] == ["status", None]


@pytest.mark.anyio
async def test_rate_limit_fault_has_the_akamai_body_and_retry_after(app: SandboxApp) -> None:
    await set_faults(app, {"rules": [{"status": 429, "retry_after": 21}, ]})
    async with signed_client(app) as client:
        limited = await client.get(LIST, params={"contractId": "1-A"}, headers=ACCEPT)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "21"
    assert limited.json() == {"type": "429 Too Many Requests", "title": "Too Many Requests",
                              "detail": "You have exhausted your API Request Quota. Retry after: 21 seconds."}


@pytest.mark.anyio
async def test_rate_limit_without_retry_after_sends_no_header(app: SandboxApp) -> None:
    await set_faults(app, {"rules": [{"status": 429}]})
    async with signed_client(app) as client:
        limited = await client.get(LIST, params={"contractId": "1-A"}, headers=ACCEPT)
    assert limited.status_code == 429 and "retry-after" not in limited.headers


@pytest.mark.anyio
async def test_dropped_connection_is_a_transport_error_in_process(app: SandboxApp) -> None:
    await set_faults(app, {"rules": [{"action": "drop", "method": "POST"}]})
    async with signed_client(app) as client:
        with pytest.raises(httpx.TransportError):
            await client.post(LIST, params={"contractId": "1-A"}, headers=CREATE, content=json.dumps(dv_body()))
    assert app.runtime.engine.list_enrollments("1-A") == []  # dropped before CPS saw it


@pytest.mark.anyio
async def test_after_phase_faults_lose_the_answer_but_not_the_change(app: SandboxApp) -> None:
    await set_faults(app, {"rules": [{"action": "drop", "method": "POST", "phase": "after", "count": 1},
                                     {"status": 500, "method": "POST", "phase": "after", "count": 1}]})
    async with signed_client(app) as client:
        with pytest.raises(httpx.TransportError):
            await client.post(LIST, params={"contractId": "1-A"}, headers=CREATE, content=json.dumps(dv_body()))
        failed = await client.post(LIST, params={"contractId": "1-B"}, headers=CREATE, content=json.dumps(dv_body()))
    assert failed.status_code == 500
    assert [r.get("processedStatus") for r in app.runtime.requests] == [202, 202]
    assert len(app.runtime.engine.list_enrollments("1-A")) == 1
    assert len(app.runtime.engine.list_enrollments("1-B")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("phase,created", [("before", 0), ("after", 1)])
async def test_timeout_fault_holds_then_hangs_up(app: SandboxApp, phase: str, created: int) -> None:
    await set_faults(app, {"rules": [{"action": "timeout", "hold_ms": 120, "method": "POST", "phase": phase,
                                      "count": 1}]})
    async with signed_client(app) as client:
        started = time.monotonic()
        with pytest.raises(httpx.TransportError):
            await client.post(LIST, params={"contractId": "1-A"}, headers=CREATE, content=json.dumps(dv_body()))
        assert time.monotonic() - started >= 0.12
    assert len(app.runtime.engine.list_enrollments("1-A")) == created
    (entry,) = app.runtime.requests
    assert entry["fault"] == "timeout" and entry["status"] is None
    assert entry.get("processedStatus") == (202 if phase == "after" else None)


@pytest.mark.anyio
async def test_tagged_rules_fault_only_their_own_traffic_and_the_log_keeps_the_tag(app: SandboxApp) -> None:
    await set_faults(app, {"rules": [{"path": "/cps/v2/enrollments", "status": 503, "tag": "mine"}]})
    async with signed_client(app) as client:
        other = await client.get(LIST, params={"contractId": "1-A"}, headers={**ACCEPT, "X-Sandbox-Tag": "theirs"})
        mine = await client.get(LIST, params={"contractId": "1-A"}, headers={**ACCEPT, "X-Sandbox-Tag": "mine"})
    assert (other.status_code, mine.status_code) == (200, 503)
    assert [(r["tag"], r["status"]) for r in app.runtime.requests] == [("theirs", 200), ("mine", 503)]


@pytest.mark.anyio
async def test_truncated_body_is_a_complete_message_with_broken_json(app: SandboxApp) -> None:
    await set_faults(app, {"rules": [{"action": "truncate", "keep": 12}]})
    async with signed_client(app) as client:
        response = await client.get(LIST, params={"contractId": "1-A"}, headers=ACCEPT)
    assert response.status_code == 200 and response.content == b'{"enrollment'
    assert response.headers["content-length"] == "12"
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.anyio
async def test_latency_delays_cps_routes_but_not_admin_routes(app: SandboxApp) -> None:
    await set_faults(app, {"latency": {"ms": 150}, "rules": [{"status": 500, "path": "/_sandbox/*"}]})
    async with signed_client(app) as client:
        started = time.monotonic()
        assert (await client.get(LIST, params={"contractId": "1-A"}, headers=ACCEPT)).status_code == 200
        assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    live = await set_faults(app, {})
    assert time.monotonic() - started < 0.15
    assert live["latency"][0]["ms"] == 150
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://x") as admin:
        assert (await admin.delete("/_sandbox/faults")).status_code == 204
        assert (await admin.get("/_sandbox/faults")).json()["latency"] == []


def test_faults_and_latency_from_the_config() -> None:
    app = create_app(SandboxConfig(faults=[FaultRule(status=502, count=1)], latency=[LatencyRule(ms=5)], seed=4))
    assert app.runtime.faults.to_json()["rules"][0]["status"] == 502
    assert app.runtime.faults.delay_seconds("GET", "/x") == pytest.approx(0.005)


@pytest.mark.anyio
async def test_production_quirks_empty_input_updates_and_loose_types() -> None:
    from reconciler.sandbox.quirks import quirk_rules

    app = create_app(SandboxConfig(engine=EngineConfig(create_throttle_seconds=0, pre_verification_warnings=True)))
    await set_faults(app, {"rules": quirk_rules()})
    async with signed_client(app) as client:
        created = await client.post(LIST, params={"contractId": "1-A"}, headers=CREATE, content=json.dumps(dv_body()))
        assert created.status_code == 202 and created.json()["changes"]  # writes other than inputs keep their body
        listed = await client.get(LIST, params={"contractId": "1-A"}, headers=ACCEPT)
        item = listed.json()["enrollments"][0]
        assert isinstance(item["id"], str) and int(item["id"]) > 0
        assert listed.headers["content-length"] == str(len(listed.content))
        single = await client.get(item["location"], headers={"Accept": V("enrollment.v12")})
        assert single.json()["id"] == item["id"]
        app.runtime.advance(600)
        change = created.json()["changes"][0]
        ack = await client.post(f"{change}/input/update/pre-verification-warnings-ack",
                                headers={"Accept": V("change-id.v1"), "Content-Type": V("acknowledgement.v1")},
                                content=json.dumps({"acknowledgement": "acknowledge"}))
        assert ack.status_code == 204 and ack.content == b"" and "content-type" not in ack.headers
        status = await client.get(change, headers={"Accept": V("change.v2")})
        assert status.json()["statusInfo"]["status"] != "wait-review-pre-verification-safety-checks"  # it was taken
        wrong = await client.post(f"{change}/input/update/pre-verification-warnings-ack",
                                  headers={"Accept": V("change-id.v1"), "Content-Type": V("acknowledgement.v1")},
                                  content=json.dumps({"acknowledgement": "acknowledge"}))
        assert wrong.status_code == 409 and wrong.json()["title"]  # errors keep their problem body


def test_loosen_change_management_info_turns_its_booleans_into_strings() -> None:
    from reconciler.sandbox.quirks import loosen

    body = {"pendingState": {"pendingCertificates": [{"ocspStapled": False}, {"ocspStapled": True}],
                             "pendingNetworkConfiguration": {"sniOnly": True, "quicEnabled": False,
                                                             "fipsMode": False}}}
    loose = loosen("change-management-info", body)
    assert [c["ocspStapled"] for c in loose["pendingState"]["pendingCertificates"]] == ["false", "true"]
    network = loose["pendingState"]["pendingNetworkConfiguration"]
    assert (network["sniOnly"], network["quicEnabled"], network["fipsMode"]) == ("true", "false", False)
    assert loosen("deployment", {"ocspStapled": False}) == {"ocspStapled": False}
