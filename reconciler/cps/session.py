"""Sending one CPS call: pacing, bounded concurrency, timeouts, retries, errors.

What may be retried depends on what the call does (``CallKind``):

- ``READ`` (GET): safe to repeat. Retried on 429, 500, 502, 503, 504, connection failures,
  timeouts and truncated or malformed bodies.
- Writes: ``CREATE`` (POST enrollment), ``REPLACE`` (PUT, DELETE) and ``INPUT`` (POST to
  ``input/update``) are never repeated blindly. The session sends one again only when CPS cannot
  have acted on it: a 429 (the gateway refused it before CPS saw it) or a connection that failed
  before the request went out. ``INPUT`` is also sent again on 409 a few times, because CPS
  answers 409 transiently right after an input appears (CPS-API.md 5.3), and a 409 means it was
  not applied. Any other failure after sending (5xx, a dropped connection, a timeout, an
  unreadable answer) raises ``AmbiguousWrite``: the client re-reads what the write was meant to
  change and decides from that (a new pending change, an enrollment found by CN, an input no
  longer asked for) whether it landed, instead of repeating it on the chance that it did not.
  A repeat of a write that landed is not harmless: a second PUT can open (or, with
  ``allow-cancel-pending-changes``, cancel) a change, a second upload can be taken again.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconciler.cps.clock import RATE_HEADER, CpsClock
from reconciler.cps.pacing import Pacer
from reconciler.cps.retry import RETRY_STATUSES_READ, RETRY_STATUSES_WRITE, RetryPolicy, parse_retry_after
from reconciler.errors import (
    AuthenticationError,
    Conflict,
    CpsApiError,
    NotFound,
    Problem,
    RateLimited,
    TransportError,
)

log = logging.getLogger("reconciler.cps")

Params = Mapping[str, str]


class CallKind(enum.Enum):
    READ = "read"
    REPLACE = "replace"
    INPUT = "input"
    CREATE = "create"


@dataclass
class ClientStats:
    """Counters for benchmarks and logs: attempts sent, retries, answers by status."""

    requests: int = 0
    retries: int = 0
    transport_errors: int = 0
    rate_limited: int = 0
    paced_seconds: float = 0.0
    by_status: Counter[int] = field(default_factory=Counter)


@dataclass(frozen=True)
class Reply:
    """A usable answer: status and parsed JSON body (``None`` when empty)."""

    status: int
    body: Any


@dataclass
class _CallState:
    kind: CallKind
    method: str
    path: str
    retries: int = 0
    conflicts: int = 0


@dataclass(frozen=True)
class _Retry:
    delay: float
    why: str
    hold_all: bool = False
    conflict: bool = False


class AmbiguousWrite(Exception):
    """A write was sent and may or may not have happened; ``error`` is what went wrong.

    ``landed`` is true when CPS did answer 2xx but the answer could not be read: the write
    happened, only what it answered is unknown.
    """

    def __init__(self, error: CpsApiError, landed: bool = False) -> None:
        self.error = error
        self.landed = landed
        super().__init__(str(error))


class _Failed(Exception):
    """One attempt got no usable answer; ``sent`` says whether CPS may have acted on it."""

    def __init__(self, reason: str, sent: bool, retryable: bool = True) -> None:
        self.reason = reason
        self.sent = sent
        self.retryable = retryable
        super().__init__(reason)


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def error_for(method: str, path: str, status: int, body: Any) -> CpsApiError:
    """The typed exception for an error answer (problem+json or anything else)."""
    problem = Problem.from_body(body)
    cls: type[CpsApiError]
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 404:
        cls = NotFound
    elif status == 409:
        cls = Conflict
    elif status == 429:
        cls = RateLimited
    else:
        cls = CpsApiError
    return cls(method, path, status, problem)


class Session:
    """Sends calls for ``CpsClient``; owns the semaphore, the pacer, the policy and the stats."""

    def __init__(self, http: httpx.AsyncClient, *, policy: RetryPolicy, pacer: Pacer,
                 max_in_flight: int, timeout: float) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._http = http
        self._policy = policy
        self._pacer = pacer
        self._slots = asyncio.Semaphore(max_in_flight)
        self._timeout = timeout
        self.stats = ClientStats()
        self.clock = CpsClock()
        """CPS's time, from the ``Date`` of every answer read."""

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    async def call(self, method: str, path: str, *, kind: CallKind, accept: str,
                   content_type: str | None = None, body: Any = None, params: Params | None = None) -> Reply:
        """Send until a usable answer, a final error, or the retry budget runs out."""
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        state = _CallState(kind, method, path)
        while True:
            # Not ``stats.x += await ...``: that reads the counter before the wait and loses what
            # other calls added meanwhile.
            waited = await self._pacer.wait()
            self.stats.paced_seconds += waited
            try:
                status, response_headers, raw = await self._attempt(
                    method, path, headers, content, params, state.retries + state.conflicts + 1)
            except _Failed as failed:
                decision = self._after_failure(state, failed)
            else:
                outcome = self._after_answer(state, status, response_headers, raw)
                if isinstance(outcome, Reply):
                    return outcome
                decision = outcome
            if decision.conflict:
                state.conflicts += 1
            else:
                state.retries += 1
            self.stats.retries += 1
            log.debug("cps retry: %s %s in %.2fs (%s)", method, path, decision.delay, decision.why)
            if decision.hold_all:
                # The limit is per account: every request waits, and the pacer does the waiting.
                self._pacer.hold(decision.delay)
            else:
                await self._policy.sleep(decision.delay)

    def _after_failure(self, state: _CallState, failed: _Failed) -> _Retry:
        error = TransportError(state.method, state.path, None, message=failed.reason)
        if failed.sent and state.kind is not CallKind.READ:
            raise AmbiguousWrite(error)
        if not failed.retryable or not self._budget_left(state):
            raise error
        return _Retry(self._policy.delay(state.retries + 1, None), why=failed.reason)

    def _after_answer(self, state: _CallState, status: int, headers: httpx.Headers, raw: bytes) -> Reply | _Retry:
        method, path, kind = state.method, state.path, state.kind
        self.clock.observe(headers.get("date"), headers.get(RATE_HEADER))
        write = kind is not CallKind.READ
        parsed, malformed = _parse(raw)
        if 200 <= status < 300:
            if malformed is None:
                return Reply(status, parsed)
            error = TransportError(method, path, status, message=f"unreadable answer: {malformed}")
            if write:
                # CPS did act on the write; repeating it would not make the answer readable.
                raise AmbiguousWrite(error, landed=True)
            if not self._budget_left(state):
                raise error
            return _Retry(self._policy.delay(state.retries + 1, None), why="unreadable answer")
        if status == 429:
            self.stats.rate_limited += 1
        if status == 409 and kind is CallKind.INPUT and state.conflicts + 1 < self._policy.conflict_attempts:
            return _Retry(self._policy.conflict_delay, conflict=True, why="status 409 on an input update")
        if write and status >= 500:
            raise AmbiguousWrite(error_for(method, path, status, parsed))
        retry_statuses = RETRY_STATUSES_READ if kind is CallKind.READ else RETRY_STATUSES_WRITE
        if status in retry_statuses:
            if not self._budget_left(state):
                raise error_for(method, path, status, parsed)
            retry_after = parse_retry_after(headers.get("Retry-After"))
            return _Retry(self._policy.delay(state.retries + 1, retry_after), hold_all=status == 429,
                          why=f"status {status}")
        raise error_for(method, path, status, parsed)

    def _budget_left(self, state: _CallState) -> bool:
        return state.retries + 1 < self._policy.attempts

    async def _attempt(self, method: str, path: str, headers: dict[str, str], content: bytes | None,
                       params: Params | None, attempt: int) -> tuple[int, httpx.Headers, bytes]:
        async with self._slots:
            self.stats.requests += 1
            started = time.monotonic()
            try:
                async with asyncio.timeout(self._timeout):
                    response = await self._http.request(method, path, headers=headers, content=content,
                                                        params=params)
            except TimeoutError:
                self.stats.transport_errors += 1
                raise _Failed(f"no complete answer within {self._timeout:g}s", sent=True) from None
            except _NOT_SENT as exc:
                self.stats.transport_errors += 1
                # A certificate that fails verification fails the same way on every attempt.
                raise _Failed(_connect_failure(exc), sent=False, retryable=not _tls_refused(exc)) from None
            except _MAYBE_SENT as exc:
                self.stats.transport_errors += 1
                raise _Failed(f"connection failed: {type(exc).__name__}", sent=True) from None
            except httpx.HTTPError as exc:
                self.stats.transport_errors += 1
                raise _Failed(f"request failed: {type(exc).__name__}", sent=False, retryable=False) from None
            elapsed = time.monotonic() - started
        self.stats.by_status[response.status_code] += 1
        # Never the query string: it may carry the account switch key.
        log.debug("cps %s %s -> %d attempt=%d %.3fs", method, path, response.status_code, attempt, elapsed)
        return response.status_code, response.headers, response.content


def _parse(raw: bytes) -> tuple[Any, str | None]:
    """Parsed JSON (or ``None`` for an empty body) and, if it is not JSON, why."""
    if not raw.strip():
        return None, None
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"{type(exc).__name__} after {len(raw)} bytes"


def _connect_failure(exc: Exception) -> str:
    """Why a connection could not be made, in words a person can act on.

    A TLS verification failure is named as such, with the way to trust a private CA (the
    sandbox's); other causes keep the exception type only, since their text may carry the URL.
    """
    if _tls_refused(exc):
        return ("cannot connect: TLS certificate verification failed (CERTIFICATE_VERIFY_FAILED); "
                "for a private CA such as the sandbox's, set ca_bundle in reconcile.yaml or RECONCILE_CA_BUNDLE")
    return f"cannot connect: {type(exc).__name__}"


def _tls_refused(exc: Exception) -> bool:
    """Whether the server's certificate failed verification (a setting to fix, not a blip)."""
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)
