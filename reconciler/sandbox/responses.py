"""Response bodies the sandbox sends: CPS vendor JSON, CPS problems, gateway problems, rate limits."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from reconciler.sandbox.media import PROBLEM_JSON, media_type
from reconciler.sandbox.problems import ApiProblem

GATEWAY_PROBLEMS = "https://problems.luna.akamaiapis.net/-/pep-authn/"


def _render(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def vendor_json(status: int, body: Any, entity_version: str) -> Response:
    """A CPS answer in exactly the media type that was negotiated."""
    return Response(_render(body), status_code=status, media_type=media_type(entity_version))


def cps_problem_body(host: str, problem: ApiProblem) -> dict[str, Any]:
    """CPS error document: ``type``/``title``/``detail``/``instance``, all non-empty (problem.yaml)."""
    error_type = f"https://{host}/cps/v2/error-types/{problem.slug}"
    return {
        "type": error_type,
        "title": problem.title or HTTPStatus(problem.status).phrase,
        "detail": problem.detail or problem.title or HTTPStatus(problem.status).phrase,
        "instance": f"{error_type}?id={secrets.token_hex(16)}",
    }


def cps_problem(host: str, problem: ApiProblem, headers: dict[str, str] | None = None) -> Response:
    return Response(_render(cps_problem_body(host, problem)), status_code=problem.status,
                    media_type=PROBLEM_JSON, headers=headers)


def status_problem(status: int, detail: str | None = None) -> ApiProblem:
    """An ``ApiProblem`` for a bare HTTP status (faults, unknown routes): slug from the phrase."""
    phrase = HTTPStatus(status).phrase
    return ApiProblem(status, phrase.lower().replace(" ", "-"), phrase, detail or phrase)


def rate_limited(retry_after: float | None) -> Response:
    """429 the way the Akamai rate limiter answers (its ``type`` is not a URI and has no instance)."""
    seconds = 0 if retry_after is None else retry_after
    shown = int(seconds) if float(seconds).is_integer() else seconds
    body = {"type": "429 Too Many Requests", "title": "Too Many Requests",
            "detail": f"You have exhausted your API Request Quota. Retry after: {shown} seconds."}
    # Retry-After is delta-seconds; fractions are a sandbox liberty that keeps tests fast.
    headers = {"Retry-After": str(shown)} if retry_after is not None else None
    return Response(_render(body), status_code=429, media_type=PROBLEM_JSON, headers=headers)


def gateway_problem(*, status: int, kind: str, title: str, detail: str, host: str, path_and_query: str,
                    method: str, server_ip: str, client_ip: str, request_id: str) -> Response:
    """The API gateway's own problem body (auth failures), with its request metadata."""
    body = {
        "type": GATEWAY_PROBLEMS + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": f"https://{host}{path_and_query}",
        "method": method,
        "serverIp": server_ip,
        "clientIp": client_ip,
        "requestId": request_id,
        "requestTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return Response(_render(body), status_code=status, media_type=PROBLEM_JSON)
