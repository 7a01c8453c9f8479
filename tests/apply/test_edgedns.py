"""Edge DNS publisher against the sandbox's record-set routes, EdgeGrid-signed and verified."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconciler.apply.publishers.base import DNS_01, ChallengeRecord
from reconciler.apply.publishers.edgedns import EdgeDnsPublisher, txt_rdata, txt_value
from reconciler.cps.auth import EdgeGridAuth
from reconciler.cps.credentials import Credentials
from reconciler.errors import PublisherError
from reconciler.sandbox.auth import EdgeGridVerifier
from reconciler.sandbox.edgedns import RecordStore, edgedns_routes
from tests.reference import EDGEDNS_V2

pytestmark = pytest.mark.anyio

CREDS = Credentials(host="edgedns.sandbox.test", client_token="ct-1", client_secret="c2VjcmV0LXNlY3JldA==",
                    access_token="at-1")
OPENAPI = EDGEDNS_V2 / "openapi.json"


def recordset_schema() -> dict[str, Any]:
    spec = json.loads(OPENAPI.read_text()) if OPENAPI.exists() else None
    if spec is None:
        pytest.skip("Edge DNS OpenAPI not available")
    op = spec["paths"]["/zones/{zone}/names/{name}/types/{type}"]["post"]
    return op["requestBody"]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def make_app(store: RecordStore, seen: list[dict[str, Any]]) -> Starlette:
    verifier = EdgeGridVerifier(CREDS.client_token, CREDS.client_secret, CREDS.access_token)

    async def authorize(request: Request, body: bytes) -> Response | None:
        query = request.url.query
        rejection = verifier.verify(method=request.method, host=request.headers["host"],
                                    path_and_query=request.url.path + (f"?{query}" if query else ""),
                                    body=body, authorization=request.headers.get("authorization"))
        if body:
            seen.append(json.loads(body))
        if rejection is None:
            return None
        return JSONResponse({"title": rejection.title, "detail": rejection.detail}, status_code=rejection.status)

    return Starlette(routes=edgedns_routes(store, authorize))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[EdgeDnsPublisher, RecordStore, list[dict[str, Any]]]]:
    store = RecordStore(tmp_path / "edgedns.json")
    seen: list[dict[str, Any]] = []
    transport = httpx.ASGITransport(app=make_app(store, seen))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{CREDS.host}",
                                 auth=EdgeGridAuth(CREDS)) as client:
        yield EdgeDnsPublisher(client, "example.com", ttl=120), store, seen


def rec(domain: str, value: str) -> ChallengeRecord:
    return ChallengeRecord(enrollment="www", domain=domain, type=DNS_01, token="t", value=value,
                           record_name=f"_acme-challenge.{domain}.")


def values(store: RecordStore, name: str) -> list[str] | None:
    found = store.get("example.com", name, "TXT")
    return None if found is None else [txt_value(r) for r in found["rdata"]]


async def test_publish_creates_and_merges_then_cleanup_removes_only_ours(setup) -> None:  # type: ignore[no-untyped-def]
    publisher, store, seen = setup
    # A pre-existing TXT value at the name must survive both publish and cleanup.
    store.put("example.com", {"name": "_acme-challenge.www.example.com", "type": "TXT", "ttl": 300,
                              "rdata": [txt_rdata("keep-me")]})
    records = [rec("www.example.com", "v-1"), rec("www.example.com", "v-2"), rec("api.example.com", "v-3")]
    assert (await publisher.publish(records)).ready
    assert values(store, "_acme-challenge.www.example.com") == ["keep-me", "v-1", "v-2"]
    assert values(store, "_acme-challenge.api.example.com") == ["v-3"]
    assert store.get("example.com", "_acme-challenge.api.example.com", "TXT")["ttl"] == 120  # type: ignore[index]
    # Publishing again changes nothing (idempotent after a crash).
    writes = len(seen)
    await publisher.publish(records)
    assert len(seen) == writes

    await publisher.cleanup(records)
    assert values(store, "_acme-challenge.www.example.com") == ["keep-me"]
    assert values(store, "_acme-challenge.api.example.com") is None
    await publisher.cleanup(records)  # already gone: fine

    validator = Draft7Validator(recordset_schema())
    assert seen and all(not list(validator.iter_errors(body)) for body in seen)
    assert json.loads((store.path).read_text())["recordsets"]  # type: ignore[union-attr]


async def test_bad_credentials_fail_with_status(tmp_path: Path) -> None:
    store = RecordStore()
    wrong = Credentials(host=CREDS.host, client_token="ct-1", client_secret="d3Jvbmc=", access_token="at-1")
    transport = httpx.ASGITransport(app=make_app(store, []))
    async with httpx.AsyncClient(transport=transport, base_url=f"https://{CREDS.host}",
                                 auth=EdgeGridAuth(wrong)) as client:
        with pytest.raises(PublisherError, match="answered 401"):
            await EdgeDnsPublisher(client, "example.com").publish([rec("www.example.com", "v")])
    assert store.all() == []


async def test_name_outside_zone_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    publisher, store, _ = setup
    with pytest.raises(PublisherError, match="not inside zone"):
        await publisher.publish([rec("www.example.org", "v")])


def test_txt_quoting_round_trips() -> None:
    for value in ("plain", 'with "quotes"', "back\\slash"):
        assert txt_value(txt_rdata(value)) == value
    assert txt_value('"part-one" "part-two"') == "part-onepart-two"
    assert txt_value("bare") == "bare"


async def test_routes_validate_bodies(setup) -> None:  # type: ignore[no-untyped-def]
    publisher, _, _ = setup
    client = publisher.client
    path = "/config-dns/v2/zones/example.com/names/x.example.com/types/TXT"
    bad = await client.post(path, json={"name": "x.example.com", "type": "TXT", "ttl": 60, "rdata": [],
                                        "extra": 1})
    assert bad.status_code == 400
    mismatch = await client.post(path, json={"name": "y.example.com", "type": "TXT", "ttl": 60, "rdata": ['"a"']})
    assert mismatch.status_code == 400
    assert (await client.put(path, json={"name": "x.example.com", "type": "TXT", "ttl": 60,
                                         "rdata": ['"a"']})).status_code == 404
    created = await client.post(path, json={"name": "x.example.com", "type": "TXT", "ttl": 60, "rdata": ['"a"']})
    assert created.status_code == 201 and created.headers["location"].endswith("/types/TXT")
    again = await client.post(path, json={"name": "x.example.com", "type": "TXT", "ttl": 60, "rdata": ['"a"']})
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert (await client.delete(path)).status_code == 204
    assert (await client.get(path)).status_code == 404


async def test_publisher_through_the_sandbox_app(tmp_path: Path) -> None:
    """The routes as mounted in the sandbox: behind its EdgeGrid gateway, persisted in its data dir."""
    from reconciler.sandbox.app import create_app
    from reconciler.sandbox.config import SandboxConfig

    config = SandboxConfig(data_dir=tmp_path)
    app = create_app(config)
    creds = config.credentials.for_host("sandbox.test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://sandbox.test",
                                 auth=EdgeGridAuth(creds)) as client:
        publisher = EdgeDnsPublisher(client, "example.com")
        await publisher.publish([rec("www.example.com", "through-gateway")])
        stored = json.loads((tmp_path / "edgedns.json").read_text())["recordsets"]
        assert [txt_value(r) for r in stored["example.com|_acme-challenge.www.example.com|TXT"]["rdata"]] == [
            "through-gateway"]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as plain:
            unsigned = await plain.get("https://sandbox.test/config-dns/v2/zones/example.com/names/"
                                       "_acme-challenge.www.example.com/types/TXT")
        assert unsigned.status_code in (400, 401)
    logged = [r["path"] for r in app.runtime.requests]
    assert any(p.startswith("/config-dns/v2/zones/example.com/") for p in logged)
