"""Failure handling: what is retried, how often, how long it waits, and that a create is never
sent twice. httpx.MockTransport stands in for CPS misbehaving (429, 5xx, resets, timeouts,
truncated bodies); sleeps are captured instead of slept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from reconciler.cps.client import CpsClient
from reconciler.cps.credentials import Credentials
from reconciler.cps.retry import RetryPolicy
from reconciler.errors import (
    AuthenticationError,
    Conflict,
    CpsApiError,
    NotFound,
    RateLimited,
    TransportError,
    WriteOutcomeUnknown,
)

from .conftest import dv_body

pytestmark = pytest.mark.anyio

CREDS = Credentials(host="akab-test.luna.akamaiapis.net", client_token="ct", client_secret="cs", access_token="at")
E = "/cps/v2/enrollments/10001"
C = f"{E}/changes/20002"
ENROLLMENT = {"id": 10001, "csr": {"cn": "www.example.com"}}


class Truncated(httpx.AsyncByteStream):
    """A body that stops half-way, as when the peer closes the connection mid-answer."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"id": 100'
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


Step = int | tuple[int, Any] | tuple[int, Any, dict[str, str]] | type[Exception] | str


class Script:
    """Answers requests from a list of steps; the last step repeats. Records what was asked."""

    def __init__(self, *steps: Step, ok: Any = None) -> None:
        self.steps = list(steps)
        self.ok = ok
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, type):
            raise step("injected", request=request)
        if step == "truncated":
            return httpx.Response(200, stream=Truncated())
        if step == "garbled":
            return httpx.Response(200, content=b'{"id": 10001, "csr": {"cn"')
        if isinstance(step, int):
            body = self.ok if 200 <= step < 300 else {"title": f"status {step}", "detail": "injected"}
            return httpx.Response(step, json=body)
        status, body, *headers = step
        return httpx.Response(status, json=body, headers=headers[0] if headers else None)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def client(handler: Callable[[httpx.Request], Any], sleeps: Sleeps, **policy: Any) -> CpsClient:
    policy.setdefault("attempts", 4)
    policy.setdefault("jitter", 0.0)
    policy.setdefault("base_delay", 0.5)
    return CpsClient(CREDS, transport=httpx.MockTransport(handler), retry=RetryPolicy(sleep=sleeps, **policy))


# --- reads -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("failure", [429, 500, 502, 503, 504, httpx.ReadError, httpx.ConnectError,
                                     httpx.ReadTimeout, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                                     "truncated", "garbled"],
                         ids=str)
async def test_get_retries_transient_failures(failure: Step, sleeps: Sleeps) -> None:
    script = Script(failure, failure, 200, ok=ENROLLMENT)
    async with client(script, sleeps) as cps:
        enrollment = await cps.get_enrollment(10001)
        assert cps.stats.requests == 3 and cps.stats.retries == 2
    assert enrollment.id == 10001
    assert len(script.requests) == 3
    assert sleeps.calls == pytest.approx([0.5, 1.0], abs=0.05)


@pytest.mark.parametrize(("failure", "error"), [(503, CpsApiError), (429, RateLimited),
                                                (httpx.ReadError, TransportError), ("truncated", TransportError)],
                         ids=str)
async def test_get_gives_up_after_the_budget(failure: Step, error: type[CpsApiError], sleeps: Sleeps) -> None:
    script = Script(failure)
    async with client(script, sleeps, attempts=3) as cps:
        with pytest.raises(error) as info:
            await cps.get_enrollment(10001)
    assert type(info.value) is error
    assert len(script.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 406, 409])
async def test_final_statuses_are_not_retried(status: int, sleeps: Sleeps) -> None:
    script = Script(status)
    async with client(script, sleeps) as cps:
        with pytest.raises(CpsApiError) as info:
            await cps.get_change(10001, 20002)
    assert info.value.status == status
    assert len(script.requests) == 1 and sleeps.calls == []
    if status in (401, 403):
        assert isinstance(info.value, AuthenticationError)


async def test_retry_after_seconds_is_obeyed(sleeps: Sleeps) -> None:
    script = Script((429, {"title": "Too Many Requests"}, {"Retry-After": "21"}), 200, ok=ENROLLMENT)
    async with client(script, sleeps) as cps:
        await cps.get_enrollment(10001)
        assert cps.stats.rate_limited == 1 and cps.stats.by_status[429] == 1
    assert len(script.requests) == 2
    assert sleeps.calls == [pytest.approx(21.0, abs=0.05)]


async def test_retry_after_http_date_is_obeyed(sleeps: Sleeps) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    script = Script((429, {}, {"Retry-After": when}), 200, ok=ENROLLMENT)
    async with client(script, sleeps) as cps:
        await cps.get_enrollment(10001)
    assert len(sleeps.calls) == 1 and 28.0 <= sleeps.calls[0] <= 30.0


async def test_429_without_retry_after_backs_off(sleeps: Sleeps) -> None:
    script = Script(429, 429, 200, ok=ENROLLMENT)
    async with client(script, sleeps, base_delay=1.0) as cps:
        await cps.get_enrollment(10001)
    assert sleeps.calls == pytest.approx([1.0, 2.0], abs=0.05)


async def test_503_retry_after_is_obeyed_too(sleeps: Sleeps) -> None:
    script = Script((503, {}, {"Retry-After": "7"}), 200, ok=ENROLLMENT)
    async with client(script, sleeps) as cps:
        await cps.get_enrollment(10001)
    assert sleeps.calls == [7.0]


async def test_a_429_holds_every_other_request(sleeps: Sleeps) -> None:
    first_429 = asyncio.Event()
    answered: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/1") and not first_429.is_set():
            first_429.set()
            return httpx.Response(429, json={}, headers={"Retry-After": "9"})
        answered.append(request.url.path)
        return httpx.Response(200, json={"id": 1})

    async with client(handler, sleeps) as cps:
        await cps.get_enrollment(1)  # took the 429, held, retried
        await cps.get_enrollment(2)  # a different call: the account-wide hold applies to it too
    # the retry waited ~9 s; the second call found the hold (its clock did not move) and waited too
    assert len(sleeps.calls) == 2 and all(s == pytest.approx(9.0, abs=0.1) for s in sleeps.calls)
    assert answered == ["/cps/v2/enrollments/1", "/cps/v2/enrollments/2"]


async def test_time_held_by_concurrent_calls_is_all_counted() -> None:
    # Two calls wait out one hold at once; a counter updated as ``x += await wait()`` kept only the
    # last one to finish (found by the fault matrix's Retry-After check).
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": 1})

    async def real_sleep(seconds: float) -> None:
        await asyncio.sleep(seconds)

    async with CpsClient(CREDS, transport=httpx.MockTransport(handler),
                         retry=RetryPolicy(sleep=real_sleep)) as cps:
        cps._session._pacer.hold(0.2)
        await asyncio.gather(cps.get_enrollment(1), cps.get_enrollment(2))
        assert cps.stats.paced_seconds >= 0.35


async def test_per_attempt_timeout(sleeps: Sleeps) -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(5)
        return httpx.Response(200, json=ENROLLMENT)

    cps = CpsClient(CREDS, transport=httpx.MockTransport(handler), timeout=0.1,
                    retry=RetryPolicy(sleep=sleeps, jitter=0.0))
    async with cps:
        started = asyncio.get_running_loop().time()
        assert (await cps.get_enrollment(10001)).id == 10001
        assert asyncio.get_running_loop().time() - started < 2
    assert calls == 2 and cps.stats.transport_errors == 1


async def test_in_flight_requests_are_bounded(sleeps: Sleeps) -> None:
    running = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return httpx.Response(200, json={"id": 1})

    async with CpsClient(CREDS, transport=httpx.MockTransport(handler), max_in_flight=3,
                         retry=RetryPolicy(sleep=sleeps)) as cps:
        await asyncio.gather(*(cps.get_enrollment(i) for i in range(20)))
        assert cps.stats.requests == 20
    assert peak == 3


# --- writes ---------------------------------------------------------------------------------------

STATUS = {"enrollment": E, "changes": [C]}
CHANGE_ID = {"change": C}


class Enrollment:
    """One enrollment behind GET/PUT/DELETE and a change behind GET/DELETE; scripted write attempts
    either land (open a change, delete) or not. Records every request."""

    def __init__(self, *steps: Step, lands: bool, pending: list[int] | None = None, opens: int = 20002) -> None:
        self.write = Script(*steps, ok=None)
        self.lands = lands
        self.pending = list(pending or [])
        self.opens = opens
        self.exists = True
        self.cancelled = False
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.method)
        if request.method == "GET":
            if request.url.path == C:
                if not self.exists:
                    return httpx.Response(404, json={"title": "Not Found"})
                return httpx.Response(200, json={"statusInfo": {"state": "cancelled" if self.cancelled else "running"}})
            if not self.exists:
                return httpx.Response(404, json={"title": "Not Found"})
            return httpx.Response(200, json={**ENROLLMENT, "pendingChanges": [
                {"location": f"{E}/changes/{c}", "changeType": "new-certificate"} for c in self.pending]})
        first = not self.write.requests
        if first and self.lands or not first:  # a landed attempt, or any attempt after the first
            if request.method == "PUT":
                self.pending = [self.opens]
            elif request.url.path == C:
                self.cancelled = True
            else:
                self.exists = False
        self.write.ok = {"enrollment": E, "changes": [f"{E}/changes/{self.opens}"]} if request.url.path == E \
            else CHANGE_ID
        return self.write(request)


AMBIGUOUS = [500, 502, 503, 504, httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError]


@pytest.mark.parametrize("failure", [429, httpx.ConnectError, httpx.ConnectTimeout], ids=str)
async def test_writes_are_sent_again_at_once_only_when_cps_cannot_have_acted(failure: Step, sleeps: Sleeps) -> None:
    put, delete, ack = Enrollment(failure, 200, lands=False), Enrollment(failure, 202, lands=False), \
        Script(failure, 200, ok=CHANGE_ID)
    async with client(put, sleeps) as a, client(delete, sleeps) as b, client(ack, sleeps) as c:
        assert (await a.update_enrollment(10001, dv_body())).change_ids == [20002]
        await b.delete_enrollment(10001)
        await c.acknowledge_dv_challenges(10001, 20002)
    assert put.requests == ["GET", "PUT", "PUT"]  # the pending changes before, then no re-read
    assert delete.requests == ["DELETE", "DELETE"] and len(ack.requests) == 2
    assert json.loads(put.write.requests[0].content) == json.loads(put.write.requests[1].content)


@pytest.mark.parametrize("failure", [*AMBIGUOUS, "garbled"], ids=str)
async def test_put_whose_answer_was_lost_is_found_by_the_change_it_opened(failure: Step, sleeps: Sleeps) -> None:
    cps_side = Enrollment(failure, lands=True)
    async with client(cps_side, sleeps) as cps:
        status = await cps.update_enrollment(10001, dv_body())
    assert status.enrollment_id == 10001 and status.change_ids == [20002]
    assert cps_side.requests == ["GET", "PUT", "GET"]  # never a second PUT


@pytest.mark.parametrize("failure", AMBIGUOUS, ids=str)
async def test_put_that_did_not_land_is_sent_again_after_a_reread(failure: Step, sleeps: Sleeps) -> None:
    cps_side = Enrollment(failure, 200, lands=False)
    async with client(cps_side, sleeps) as cps:
        status = await cps.update_enrollment(10001, dv_body())
    assert status.change_ids == [20002]
    assert cps_side.requests == ["GET", "PUT", "GET", "PUT"]
    assert sleeps.calls == [0.5]  # a moment for CPS before the re-read


@pytest.mark.parametrize("lands,expected,puts", [(True, [20003], 1), (False, [20003], 2)])
async def test_put_cancelling_a_pending_change_takes_only_a_new_change_as_its_own(
        lands: bool, expected: list[int], puts: int, sleeps: Sleeps) -> None:
    cps_side = Enrollment(httpx.ReadTimeout, 200, lands=lands, pending=[20001], opens=20003)
    async with client(cps_side, sleeps) as cps:
        status = await cps.update_enrollment(10001, dv_body(), allow_cancel_pending_changes=True)
    assert status.change_ids == expected and cps_side.requests.count("PUT") == puts


class _NeverAnswers(Enrollment):
    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.method)
        if request.method == "GET":
            return httpx.Response(200, json={**ENROLLMENT, "pendingChanges": []})
        raise httpx.ReadTimeout("injected", request=request)


async def test_put_that_never_gets_an_answer_says_its_outcome_is_unknown(sleeps: Sleeps) -> None:
    cps_side = _NeverAnswers(lands=False)
    async with client(cps_side, sleeps, attempts=3) as cps:
        with pytest.raises(WriteOutcomeUnknown, match="may or may not have been applied"):
            await cps.update_enrollment(10001, dv_body())
    assert cps_side.requests == ["GET", "PUT", "GET", "PUT", "GET", "PUT", "GET"]


@pytest.mark.parametrize("failure", AMBIGUOUS, ids=str)
@pytest.mark.parametrize("lands", [True, False], ids=["landed", "not-landed"])
async def test_delete_after_an_ambiguous_failure_is_settled_by_a_reread(failure: Step, lands: bool,
                                                                        sleeps: Sleeps) -> None:
    cps_side = Enrollment(failure, 202, lands=lands)
    async with client(cps_side, sleeps) as cps:
        status = await cps.delete_enrollment(10001)
    assert status.enrollment_id == 10001
    assert cps_side.requests == (["DELETE", "GET"] if lands else ["DELETE", "GET", "DELETE"])
    assert not cps_side.exists


async def test_delete_404_on_first_try_is_not_found(sleeps: Sleeps) -> None:
    script = Script(404)
    async with client(script, sleeps) as cps:
        with pytest.raises(NotFound):
            await cps.delete_enrollment(10001)


@pytest.mark.parametrize("lands", [True, False], ids=["landed", "not-landed"])
async def test_cancel_change_after_an_ambiguous_failure_is_settled_by_a_reread(lands: bool, sleeps: Sleeps) -> None:
    cps_side = Enrollment(503, 200, lands=lands)
    async with client(cps_side, sleeps) as cps:
        assert (await cps.cancel_change(10001, 20002)).change_id == 20002
    assert cps_side.requests == (["DELETE", "GET"] if lands else ["DELETE", "GET", "DELETE"])
    assert cps_side.cancelled


async def test_input_update_retries_409_a_few_times(sleeps: Sleeps) -> None:
    script = Script(409, 409, 200, ok=CHANGE_ID)
    async with client(script, sleeps, conflict_attempts=3, conflict_delay=2.0) as cps:
        assert (await cps.acknowledge_post_verification_warnings(10001, 20002)).change_id == 20002
    assert len(script.requests) == 3 and sleeps.calls == [2.0, 2.0]


async def test_input_update_409_gives_up(sleeps: Sleeps) -> None:
    script = Script(409)
    async with client(script, sleeps, conflict_attempts=3) as cps:
        with pytest.raises(Conflict):
            await cps.acknowledge_change_management(10001, 20002, "hash")
    assert len(script.requests) == 3


@pytest.mark.parametrize("failure", AMBIGUOUS, ids=str)
async def test_input_update_with_an_unknown_outcome_is_left_to_the_caller(failure: Step, sleeps: Sleeps) -> None:
    # Only the workflow can tell whether CPS still wants the input (and an upload must never go
    # twice), so the client does not send it again: it says the outcome is unknown.
    script = Script(failure, 200, ok=CHANGE_ID)
    async with client(script, sleeps) as cps:
        with pytest.raises(WriteOutcomeUnknown) as info:
            await cps.upload_third_party_certificates(10001, 20002, [])
    assert len(script.requests) == 1 and info.value.path.endswith("/third-party-cert-and-trust-chain")
    assert sleeps.calls == []


async def test_unreadable_answer_to_an_input_means_cps_took_it(sleeps: Sleeps) -> None:
    script = Script("garbled", 200, ok=CHANGE_ID)
    async with client(script, sleeps) as cps:
        ack = await cps.acknowledge_dv_challenges(10001, 20002)
    assert (ack.enrollment_id, ack.change_id) == (10001, 20002)
    assert len(script.requests) == 1


async def test_401_on_a_write_is_not_retried(sleeps: Sleeps) -> None:
    script = Script(401)
    async with client(script, sleeps) as cps:
        with pytest.raises(AuthenticationError):
            await cps.upload_third_party_certificates(10001, 20002, [])
    assert len(script.requests) == 1


# --- create: never twice ----------------------------------------------------------------------------

class Cps:
    """A contract's enrollment list plus a scripted POST; a POST that "lands" adds an enrollment."""

    def __init__(self, *post_steps: Step, lands: bool, existing: list[dict[str, Any]] | None = None,
                 extra_new: int = 0) -> None:
        self.enrollments = list(existing or [])
        self.post = Script(*post_steps, ok=None)
        self.lands = lands
        self.extra_new = extra_new
        self.gets = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.gets += 1
            return httpx.Response(200, json={"enrollments": self.enrollments})
        assert request.method == "POST"
        if self.lands and not self.post.requests:
            for n in range(1 + self.extra_new):
                eid = 10050 + n
                self.enrollments.append({"id": eid, "location": f"/cps/v2/enrollments/{eid}",
                                         "csr": {"cn": "www.example.com"},
                                         "pendingChanges": [{"location": f"/cps/v2/enrollments/{eid}/changes/30000",
                                                             "changeType": "new-certificate"}]})
        self.post.ok = {"enrollment": "/cps/v2/enrollments/10050", "changes": ["/cps/v2/enrollments/10050/changes/30000"]}
        return self.post(request)


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError, 500, 502, 503,
                                     504, "truncated", "garbled"], ids=str)
async def test_create_answer_lost_finds_the_new_enrollment_by_cn(failure: Step, sleeps: Sleeps) -> None:
    cps_side = Cps(failure, lands=True, existing=[{"id": 9, "csr": {"cn": "other.example.com"}}])
    async with client(cps_side, sleeps) as cps:
        status = await cps.create_enrollment("ctr_1-AB", dv_body("www.example.com"))
    assert len(cps_side.post.requests) == 1
    assert cps_side.gets == 2  # before and after
    assert status.enrollment_id == 10050 and status.change_ids == [30000]


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError, 500, 502, 503, 504], ids=str)
async def test_create_that_did_not_land_is_sent_again_after_the_lookup(failure: Step, sleeps: Sleeps) -> None:
    cps_side = Cps(failure, 202, lands=False)
    async with client(cps_side, sleeps) as cps:
        status = await cps.create_enrollment("1-AB", dv_body())
    assert status.enrollment_id == 10050
    assert len(cps_side.post.requests) == 2 and cps_side.gets == 2  # before, and the lookup between


async def test_create_is_not_sent_again_once_the_budget_is_spent(sleeps: Sleeps) -> None:
    cps_side = Cps(503, lands=False)
    async with client(cps_side, sleeps, attempts=3) as cps:
        with pytest.raises(WriteOutcomeUnknown):
            await cps.create_enrollment("1-AB", dv_body())
    assert len(cps_side.post.requests) == 3 and cps_side.gets == 4


async def test_create_with_two_new_candidates_is_not_guessed(sleeps: Sleeps) -> None:
    cps_side = Cps(httpx.ReadTimeout, lands=True, extra_new=1)
    async with client(cps_side, sleeps) as cps:
        with pytest.raises(WriteOutcomeUnknown):
            await cps.create_enrollment("1-AB", dv_body(), allow_duplicate_cn=True)
    assert len(cps_side.post.requests) == 1


async def test_create_duplicate_cn_existing_before_is_not_mistaken_for_ours(sleeps: Sleeps) -> None:
    old = {"id": 7, "location": "/cps/v2/enrollments/7", "csr": {"cn": "WWW.example.com"}}
    cps_side = Cps(httpx.ReadTimeout, lands=True, existing=[old])
    async with client(cps_side, sleeps) as cps:
        status = await cps.create_enrollment("1-AB", dv_body(), allow_duplicate_cn=True)
    assert status.enrollment_id == 10050
    assert len(cps_side.post.requests) == 1


@pytest.mark.parametrize("failure", [429, httpx.ConnectError, httpx.ConnectTimeout], ids=str)
async def test_create_is_resent_only_when_cps_cannot_have_acted(failure: Step, sleeps: Sleeps) -> None:
    cps_side = Cps(failure, 202, lands=False)
    async with client(cps_side, sleeps) as cps:
        status = await cps.create_enrollment("1-AB", dv_body())
    assert status.enrollment_id == 10050
    assert len(cps_side.post.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 409])
async def test_create_refusals_are_final(status: int, sleeps: Sleeps) -> None:
    cps_side = Cps(status, lands=False)
    async with client(cps_side, sleeps) as cps:
        with pytest.raises(CpsApiError) as info:
            await cps.create_enrollment("1-AB", dv_body())
    assert info.value.status == status
    assert len(cps_side.post.requests) == 1 and cps_side.gets == 1


# --- create with the same-CN enrollments already known (apply, right after its refresh) -------------

@pytest.mark.parametrize("failure", [httpx.ReadTimeout, 502, "truncated"], ids=str)
async def test_create_with_known_ids_skips_the_list_before_and_still_settles(failure: Step, sleeps: Sleeps) -> None:
    old = {"id": 7, "location": "/cps/v2/enrollments/7", "csr": {"cn": "www.example.com"}}
    cps_side = Cps(failure, lands=True, existing=[old])
    async with client(cps_side, sleeps) as cps:
        status = await cps.create_enrollment("1-AB", dv_body(), allow_duplicate_cn=True, same_cn_ids=[7])
    assert status.enrollment_id == 10050  # the known one was not taken for ours
    assert len(cps_side.post.requests) == 1 and cps_side.gets == 1  # only the look-up after the lost answer


async def test_create_with_known_ids_that_did_not_land_is_sent_again(sleeps: Sleeps) -> None:
    cps_side = Cps(httpx.RemoteProtocolError, 202, lands=False)
    async with client(cps_side, sleeps) as cps:
        status = await cps.create_enrollment("1-AB", dv_body(), same_cn_ids=())
    assert status.enrollment_id == 10050
    assert len(cps_side.post.requests) == 2 and cps_side.gets == 1


async def test_create_with_known_ids_answered_sends_only_the_post(sleeps: Sleeps) -> None:
    cps_side = Cps(202, lands=True)
    async with client(cps_side, sleeps) as cps:
        status = await cps.create_enrollment("1-AB", dv_body(), same_cn_ids=())
    assert status.enrollment_id == 10050
    assert len(cps_side.post.requests) == 1 and cps_side.gets == 0


async def test_create_trusts_the_known_ids_it_is_given(sleeps: Sleeps) -> None:
    # An enrollment with the CN the caller did not know of counts as new: with ours, two new ones,
    # and the outcome is reported unknown rather than guessed (the caller must pass every id).
    old = {"id": 7, "location": "/cps/v2/enrollments/7", "csr": {"cn": "www.example.com"}}
    cps_side = Cps(httpx.ReadTimeout, lands=True, existing=[old])
    async with client(cps_side, sleeps) as cps:
        with pytest.raises(WriteOutcomeUnknown):
            await cps.create_enrollment("1-AB", dv_body(), allow_duplicate_cn=True, same_cn_ids=[])
    assert len(cps_side.post.requests) == 1
