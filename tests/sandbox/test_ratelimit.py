"""Production's request limits and create throttle, on by default (issue 18)."""

from __future__ import annotations

import json

import httpx
import pytest

from reconciler.cps.client import CpsClient
from reconciler.cps.pacing import scaled_account_limit
from reconciler.cps.retry import RetryPolicy
from reconciler.sandbox.app import create_app
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.media import media_type as V
from reconciler.sandbox.ratelimit import PRODUCTION, RateLimiter, parse_rate_limits, retry_after_seconds
from tests.sandbox.helpers import dv_body, signed_client

LIST = "/cps/v2/enrollments"
ACCEPT = {"Accept": V("enrollments.v12")}


def test_settings_parse() -> None:
    assert parse_rate_limits("production") == PRODUCTION == ((20, 2.0), (100, 120.0))
    assert parse_rate_limits("off") == ()
    assert parse_rate_limits("20/2s, 100/120s") == ((20, 2.0), (100, 120.0))
    assert parse_rate_limits("5/0.5") == ((5, 0.5),)
    for bad in ("20", "0/2s", "20/0s", "x/2s"):
        with pytest.raises(ValueError):
            parse_rate_limits(bad)


def test_sliding_windows_refuse_with_the_wait_until_a_slot_frees() -> None:
    limiter = RateLimiter(PRODUCTION)
    for i in range(20):
        assert limiter.admit(1000.0 + i * 0.05) is None
    wait = limiter.admit(1001.0)
    assert wait == pytest.approx(1.0)  # the first of the 20 leaves the 2 s window at 1002.0
    assert limiter.admit(1002.01) is None  # one slot freed
    # 100 per 120 s: keep under 20 per 2 s and the long window is what refuses.
    limiter = RateLimiter(PRODUCTION)
    for i in range(100):
        assert limiter.admit(i * 0.2) is None
    assert limiter.admit(20.0) == pytest.approx(100.0)
    assert limiter.refused == 1
    assert retry_after_seconds(100.0, 1.0) == 100 and retry_after_seconds(100.0, 1000.0) == 0.1
    assert retry_after_seconds(1.2, 1.0) == 2.0


@pytest.mark.anyio
async def test_over_the_limit_is_429_with_retry_after_and_the_documented_body() -> None:
    app = create_app(SandboxConfig(speed=0.0))  # the clock stands still: only the limit moves nothing
    async with signed_client(app) as client:
        answers = [await client.get(LIST, params={"contractId": "1-A"}, headers=ACCEPT) for _ in range(21)]
    assert [a.status_code for a in answers[:20]] == [200] * 20
    limited = answers[20]
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json() == {"type": "429 Too Many Requests", "title": "Too Many Requests",
                              "detail": "You have exhausted your API Request Quota. Retry after: 2 seconds."}
    assert app.runtime.requests[-1]["fault"] == "rate-limit"
    app.runtime.advance(2.5)  # virtual time passes: the window slides
    async with signed_client(app) as client:
        assert (await client.get(LIST, params={"contractId": "1-A"}, headers=ACCEPT)).status_code == 200


@pytest.mark.anyio
async def test_limits_off_is_said_explicitly() -> None:
    app = create_app(SandboxConfig(speed=0.0, rate_limits=()))
    async with signed_client(app) as client:
        statuses = {(await client.get(LIST, params={"contractId": "1-A"}, headers=ACCEPT)).status_code
                    for _ in range(30)}
    assert statuses == {200}


@pytest.mark.anyio
async def test_create_throttle_is_on_by_default_and_409s_a_second_create_on_the_contract() -> None:
    app = create_app(SandboxConfig())
    headers = {"Accept": V("enrollment-status.v1"), "Content-Type": V("enrollment.v12")}
    async with signed_client(app) as client:
        first = await client.post(LIST, params={"contractId": "1-A"}, headers=headers,
                                  content=json.dumps(dv_body("a.example.com")))
        second = await client.post(LIST, params={"contractId": "1-A"}, headers=headers,
                                   content=json.dumps(dv_body("b.example.com")))
        other = await client.post(LIST, params={"contractId": "1-B"}, headers=headers,
                                  content=json.dumps(dv_body("c.example.com")))
        app.runtime.advance(300)
        later = await client.post(LIST, params={"contractId": "1-A"}, headers=headers,
                                  content=json.dumps(dv_body("b.example.com")))
    assert (first.status_code, second.status_code, other.status_code, later.status_code) == (202, 409, 202, 202)
    assert "Only one enrollment can be created every 300 seconds" in second.json()["detail"]


@pytest.mark.anyio
async def test_the_client_paced_at_the_sandbox_scale_collects_no_429() -> None:
    """The in-process demo's arrangement: limits at x100 real time, the client's pacer at the same."""
    app = create_app(SandboxConfig(rate_limit_speed=100.0))
    creds = app.runtime.config.credentials.for_host("cps.sandbox.test")
    async with CpsClient(creds, base_url="https://cps.sandbox.test", transport=httpx.ASGITransport(app=app),
                         rate_limit=scaled_account_limit(100.0), retry=RetryPolicy(attempts=1)) as cps:
        for _ in range(130):  # past both windows' counts
            await cps.list_enrollments("ctr_1-A")
        assert cps.stats.rate_limited == 0 and cps.stats.paced_seconds > 0
    assert app.runtime.limiter.refused == 0
