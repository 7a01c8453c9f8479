"""The app's HTTP behaviour in process: negotiation, validation, parameters, gateway auth errors,
problem bodies, admin routes, and persistence across a restart."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.sandbox.app import SandboxApp, create_app
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.media import media_type as V
from tests.sandbox.helpers import IN_PROCESS_HOST, dv_body, schema_errors, signed_client

pytestmark = pytest.mark.anyio

LIST = "/cps/v2/enrollments"
CREATE_HEADERS = {"Accept": V("enrollment-status.v1"), "Content-Type": V("enrollment.v12")}


@pytest.fixture
def app() -> SandboxApp:
    return create_app(SandboxConfig(engine=EngineConfig(create_throttle_seconds=0)))


@pytest.fixture
async def client(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_client(app) as c:
        yield c


async def create(client: httpx.AsyncClient, body: dict[str, Any] | None = None, contract: str = "1-ABC",
                 **params: str) -> httpx.Response:
    return await client.post(LIST, params={"contractId": contract, **params}, headers=CREATE_HEADERS,
                             content=json.dumps(body or dv_body()))


def assert_cps_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://{IN_PROCESS_HOST}/cps/v2/error-types/{slug}"
    assert body["instance"].startswith(body["type"] + "?id=") and len(body["instance"].split("=")[1]) == 32
    assert schema_errors("problem", body) == []
    return body


async def test_list_and_create_answer_the_negotiated_type(client: httpx.AsyncClient) -> None:
    created = await create(client)
    assert created.status_code == 202
    assert created.headers["content-type"] == V("enrollment-status.v1")
    listed = await client.get(LIST, params={"contractId": "1-ABC"}, headers={"Accept": V("enrollments.v11")})
    assert listed.headers["content-type"] == V("enrollments.v11")
    [enrollment] = listed.json()["enrollments"]
    assert enrollment["location"] == created.json()["enrollment"] and isinstance(enrollment["id"], int)
    other = await client.get(LIST, params={"contractId": "1-OTHER"}, headers={"Accept": V("enrollments.v12")})
    assert other.json() == {"enrollments": []}  # enrollments are scoped by contract


async def test_content_type_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    body = dv_body()
    del body["networkConfiguration"]["fipsMode"]  # not in v11
    response = await client.post(LIST, params={"contractId": "1-ABC"}, content=json.dumps(body),
                                 headers={**CREATE_HEADERS, "Content-Type": V("enrollment.v11") + "; charset=utf-8"})
    assert response.status_code == 202


async def test_unserved_accept_is_406_and_unserved_body_type_is_415(client: httpx.AsyncClient) -> None:
    for accept in (V("enrollments.v13"), "*/*", None):
        headers = {"Accept": accept} if accept else {}
        body = assert_cps_problem(await client.get(LIST, params={"contractId": "1-ABC"}, headers=headers),
                                  406, "not-acceptable")
        assert V("enrollments.v12") in body["detail"]
    for content_type in (V("enrollment.v13"), "application/json"):
        response = await client.post(LIST, params={"contractId": "1-ABC"}, content=json.dumps(dv_body()),
                                     headers={**CREATE_HEADERS, "Content-Type": content_type})
        assert_cps_problem(response, 415, "unsupported-media-type")


async def test_invalid_bodies_are_400_with_the_validation_message(client: httpx.AsyncClient, app: SandboxApp) -> None:
    bad = dv_body()
    bad["networkConfiguration"]["sniOnly"] = "yes"
    body = assert_cps_problem(await create(client, bad), 400, "bad-request")
    assert "networkConfiguration.sniOnly" in body["detail"] and "'yes' is not of type 'boolean'" in body["detail"]
    # fipsMode exists only in v12: a v11 body carrying it breaks the v11 schema.
    response = await client.post(LIST, params={"contractId": "1-ABC"}, content=json.dumps(dv_body()),
                                 headers={**CREATE_HEADERS, "Content-Type": V("enrollment.v11")})
    assert "fipsMode" in assert_cps_problem(response, 400, "bad-request")["detail"]
    response = await client.post(LIST, params={"contractId": "1-ABC"}, content=b"{not json", headers=CREATE_HEADERS)
    assert assert_cps_problem(response, 400, "bad-request")["detail"] == "The request body is not valid JSON."
    assert app.runtime.engine.list_enrollments("1-ABC") == []  # nothing reached the engine


@pytest.mark.parametrize("params,needle", [
    ({}, "contractId is required"),
    ({"contractId": ""}, "contractId is required"),
    ({"contractId": "ctr_1-ABC"}, "without the ctr_ prefix"),
    ({"contractId": "1-ABC", "allow-duplicate-cn": "yes"}, "must be true or false"),
    ({"contractId": "1-ABC", "deploy-not-after": "31/01/2030"}, "must be a date"),
    ({"contractId": "1-ABC", "deploy-not-before": "2030-02-30"}, "must be a date"),
])
async def test_bad_query_parameters_are_400(client: httpx.AsyncClient, params: dict[str, str], needle: str) -> None:
    response = await client.post(LIST, params=params, headers=CREATE_HEADERS, content=json.dumps(dv_body()))
    assert needle in assert_cps_problem(response, 400, "bad-request")["detail"]


async def test_list_without_contract_id_lists_every_enrollment(client: httpx.AsyncClient) -> None:
    for contract, cn in (("1-ABC", "a.example.com"), ("1-XYZ", "b.example.com")):
        assert (await create(client, dv_body(cn), contract=contract)).status_code == 202
    listed = await client.get(LIST, headers={"Accept": V("enrollments.v12")})
    assert listed.status_code == 200
    assert sorted(e["csr"]["cn"] for e in listed.json()["enrollments"]) == ["a.example.com", "b.example.com"]
    for bad in ("", "ctr_1-ABC"):
        response = await client.get(LIST, params={"contractId": bad}, headers={"Accept": V("enrollments.v12")})
        assert_cps_problem(response, 400, "bad-request")


async def test_query_flags_reach_the_engine(client: httpx.AsyncClient) -> None:
    assert (await create(client)).status_code == 202
    assert_cps_problem(await create(client), 409, "conflict")  # the same CN again
    assert (await create(client, **{"allow-duplicate-cn": "TRUE"})).status_code == 202
    scheduled = await create(client, dv_body("later.example.com", ["later.example.com"]),
                             **{"deploy-not-before": "2030-01-31"})
    schedule = await client.get(scheduled.json()["changes"][0] + "/deployment-schedule",
                                headers={"Accept": V("deployment-schedule.v1")})
    assert schedule.json()["notBefore"].startswith("2030-01-31T00:00:00")


async def test_pending_change_conflict_and_allow_cancel(client: httpx.AsyncClient) -> None:
    location = (await create(client)).json()["enrollment"]
    current = (await client.get(location, headers={"Accept": V("enrollment.v12")})).json()
    current["csr"]["sans"].append("api.example.com")
    put = {"Accept": V("enrollment-status.v1"), "Content-Type": V("enrollment.v12")}
    refused = await client.put(location, headers=put, content=json.dumps(current))
    body = assert_cps_problem(refused, 409, "cannot-cancel-pending-change")
    assert body["title"] == "Cannot cancel pending change."
    allowed = await client.put(location, params={"allow-cancel-pending-changes": "true"}, headers=put,
                               content=json.dumps(current))
    assert allowed.status_code == 202 and len(allowed.json()["changes"]) == 1


@pytest.mark.parametrize("path", [
    "/cps/v2/enrollments/abc", "/cps/v2/enrollments/99999", "/cps/v2/enrollments/10000/changes/x",
    "/cps/v2/nothing-here",
])
async def test_unknown_things_are_404_problems(client: httpx.AsyncClient, path: str) -> None:
    await create(client)
    assert_cps_problem(await client.get(path, headers={"Accept": V("enrollment.v12"), "x": "y"}
                                        if "changes" not in path else {"Accept": V("change.v2")}),
                       404, "not-found")


async def test_unknown_input_segments_are_404(client: httpx.AsyncClient) -> None:
    status = (await create(client)).json()
    change = status["changes"][0]
    info = await client.get(change + "/input/info/third-party-csr-please", headers={"Accept": V("csr.v2")})
    assert_cps_problem(info, 404, "not-found")
    update = await client.post(change + "/input/update/lets-encrypt-challenges", headers={
        "Accept": V("change-id.v1"), "Content-Type": V("acknowledgement.v1")}, content=b'{"acknowledgement":"acknowledge"}')
    assert_cps_problem(update, 404, "not-found")


async def test_info_accept_must_fit_the_segment(client: httpx.AsyncClient) -> None:
    change = (await create(client)).json()["changes"][0]
    response = await client.get(change + "/input/info/lets-encrypt-challenges", headers={"Accept": V("csr.v2")})
    assert V("dv-challenges.v2") in assert_cps_problem(response, 406, "not-acceptable")["detail"]


async def test_update_body_type_must_fit_the_segment(client: httpx.AsyncClient) -> None:
    change = (await create(client)).json()["changes"][0]
    response = await client.post(change + "/input/update/lets-encrypt-challenges-completed", headers={
        "Accept": V("change-id.v1"), "Content-Type": V("acknowledgement-with-hash.v1")},
        content=b'{"acknowledgement":"acknowledge","hash":"00"}')
    assert_cps_problem(response, 415, "unsupported-media-type")


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.patch(LIST, headers={"Accept": V("enrollments.v12")})
    assert_cps_problem(response, 405, "method-not-allowed")


async def test_gateway_refuses_unsigned_and_badly_signed_requests(app: SandboxApp) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{IN_PROCESS_HOST}") as anonymous:
        missing = await anonymous.get(LIST, params={"contractId": "1-ABC"})
    assert missing.status_code == 400
    body = missing.json()
    assert body["type"] == "https://problems.luna.akamaiapis.net/-/pep-authn/request-error"
    assert body["detail"] == "Authorization header missing" and body["status"] == 400
    assert set(body) >= {"instance", "method", "serverIp", "clientIp", "requestId", "requestTime"}
    assert body["serverIp"] == "127.0.0.1" and body["requestId"] == app.runtime.requests[-1]["requestId"]
    wrong = app.runtime.config.credentials.for_host(IN_PROCESS_HOST)
    forged = type(wrong)(host=wrong.host, client_token=wrong.client_token, client_secret="b3RoZXI=",
                         access_token=wrong.access_token)
    async with signed_client(app, forged) as client:
        denied = await client.get(LIST, params={"contractId": "1-ABC"}, headers={"Accept": V("enrollments.v12")})
    assert denied.status_code == 401 and denied.headers["content-type"] == "application/problem+json"
    assert denied.json()["type"] == "https://problems.luna.akamaiapis.net/-/pep-authn/deny"
    assert denied.json()["detail"] == "The signature does not match"


async def test_account_switch_key_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get(LIST, params={"contractId": "1-ABC", "accountSwitchKey": "1-5C0YLB:1-8BYUX"},
                                headers={"Accept": V("enrollments.v12")})
    assert response.status_code == 200


async def test_admin_routes_are_unsigned(app: SandboxApp, client: httpx.AsyncClient) -> None:
    await create(client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://x") as admin:
        before = (await admin.get("/_sandbox/time")).json()
        moved = (await admin.post("/_sandbox/advance", json={"seconds": 86400})).json()
        assert moved["now"][:10] > before["now"][:10]
        assert (await admin.post("/_sandbox/advance", json={"seconds": -1})).status_code == 400
        assert (await admin.post("/_sandbox/advance", json={})).status_code == 400
        log = (await admin.get("/_sandbox/requests")).json()["requests"]
        assert [(r["method"], r["path"], r["status"]) for r in log] == [("POST", LIST, 202)]
        assert log[0]["query"] == "contractId=1-ABC" and log[0]["time"] and log[0]["virtualTime"]
        assert (await admin.delete("/_sandbox/requests")).status_code == 204
        assert (await admin.get("/_sandbox/requests")).json() == {"requests": []}
        state = (await admin.get("/_sandbox/state")).json()
        assert state["counters"]["requests"] == 1
        [summary] = state["engine"]["enrollments"]
        assert (summary["id"], summary["contract"], summary["cn"]) == (10000, "1-ABC", "www.example.com")
        assert [c["state"] for c in summary["pendingChanges"]] == ["awaiting-input"]
        bad = await admin.post("/_sandbox/faults", json={"rules": [{"action": "explode"}]})
        assert bad.status_code == 400


async def test_data_survives_a_restart(tmp_path: Path) -> None:
    config = SandboxConfig(data_dir=tmp_path, engine=EngineConfig(create_throttle_seconds=0))
    first = create_app(config)
    async with signed_client(first) as client:
        location = (await create(client)).json()["enrollment"]
        first.runtime.advance(3600)
        before = (await client.get(location, headers={"Accept": V("enrollment.v12")})).json()
    moved_to = first.runtime.now()
    second = create_app(config)  # same directory, same credentials: a restarted sandbox
    assert abs((second.runtime.now() - moved_to).total_seconds()) < 5
    async with signed_client(second) as client:
        after = (await client.get(location, headers={"Accept": V("enrollment.v12")})).json()
        assert after == before
        again = await create(client, dv_body("two.example.com", ["two.example.com"]))
    assert int(again.json()["enrollment"].rsplit("/", 1)[1]) == before["id"] + 1  # id counters persisted too
    assert second.runtime.ca.root_pem == first.runtime.ca.root_pem


async def test_challenge_status_is_lower_case_acme_as_production_sends_it(client: httpx.AsyncClient,
                                                                         app: SandboxApp) -> None:
    change = (await create(client, dv_body("low.example.com", ["low.example.com"]))).json()["changes"][0]
    app.runtime.advance(600)
    info = await client.get(f"{change}/input/info/lets-encrypt-challenges", headers={"Accept": V("dv-challenges.v2")})
    (domain,) = info.json()["dv"]
    assert domain["status"] == "Awaiting user"  # the domain's status keeps the UI wording
    assert {c["status"] for c in domain["challenges"]} == {"pending"}


async def _challenges(client: httpx.AsyncClient, change: str) -> dict[str, Any]:
    info = await client.get(f"{change}/input/info/lets-encrypt-challenges", headers={"Accept": V("dv-challenges.v2")})
    (domain,) = info.json()["dv"]
    return {"domain": domain, **{c["type"]: c for c in domain["challenges"]}}


async def test_validation_by_looking_is_the_default_and_needs_no_acknowledgement(tmp_path: Any) -> None:
    """Issue 18: the sandbox looks (its own Edge DNS, zone files) on a schedule; a published record
    validates with no acknowledgement, an acknowledged unpublished one fails and is replaced."""
    zone_file = tmp_path / "dns-published.txt"
    app = create_app(SandboxConfig(engine=EngineConfig(create_throttle_seconds=0, dns_zone_files=(str(zone_file),))))
    assert app.runtime.config.engine.validation_policy == "look"
    async with signed_client(app) as client:
        edns = (await create(client, dv_body("edns.example.com", ["edns.example.com"]))).json()["changes"][0]
        zone = (await create(client, dv_body("zone.example.com", ["zone.example.com"]))).json()["changes"][0]
        nowhere = (await create(client, dv_body("nowhere.example.com", ["nowhere.example.com"]))).json()["changes"][0]
        app.runtime.advance(600)
        edns_dns = (await _challenges(client, edns))["dns-01"]
        name = edns_dns["fullPath"].rstrip(".")
        published = await client.post(f"/config-dns/v2/zones/example.com/names/{name}/types/TXT",
                                      json={"name": name, "type": "TXT", "ttl": 60, "rdata": [f'"{edns_dns["responseBody"]}"']})
        assert published.status_code == 201, published.text
        zone_dns = (await _challenges(client, zone))["dns-01"]
        zone_file.write_text(f"{zone_dns['fullPath']} TXT {zone_dns['responseBody']}\n")  # the demo hook's format
        before = (await _challenges(client, nowhere))["dns-01"]
        ack = await client.post(f"{nowhere}/input/update/lets-encrypt-challenges-completed",
                                headers={"Accept": V("change-id.v1"), "Content-Type": V("acknowledgement.v1")},
                                content=json.dumps({"acknowledgement": "acknowledge"}))
        assert ack.status_code == 200  # taken; the check it asked for fails
        failed = await _challenges(client, nowhere)
        assert failed["domain"]["validationStatus"] == "RESPONSE_ERROR" and "New challenges" in failed["domain"]["error"]
        assert failed["dns-01"]["token"] != before["token"] and failed["dns-01"]["status"] == "pending"
        app.runtime.advance(300)  # the schedule looks again: found in Edge DNS and in the zone file
        for change in (edns, zone):
            status = (await client.get(change, headers={"Accept": V("change.v2")})).json()["statusInfo"]
            assert status["status"] != "coodinate-domain-validation" or status["state"] == "running", status
        still = (await client.get(nowhere, headers={"Accept": V("change.v2")})).json()["statusInfo"]
        assert (still["status"], still["state"]) == ("coodinate-domain-validation", "awaiting-input")


async def test_trust_ack_keeps_the_old_trusting_behaviour_when_asked_for() -> None:
    app = create_app(SandboxConfig(engine=EngineConfig(create_throttle_seconds=0, validation_policy="trust-ack")))
    async with signed_client(app) as client:
        change = (await create(client, dv_body("t.example.com", ["t.example.com"]))).json()["changes"][0]
        app.runtime.advance(600)
        await client.post(f"{change}/input/update/lets-encrypt-challenges-completed",
                          headers={"Accept": V("change-id.v1"), "Content-Type": V("acknowledgement.v1")},
                          content=json.dumps({"acknowledgement": "acknowledge"}))
        status = (await client.get(change, headers={"Accept": V("change.v2")})).json()["statusInfo"]
    assert (status["status"], status["state"]) == ("coodinate-domain-validation", "running")
