"""Sandbox-only admin routes under ``/_sandbox/`` (unsigned, never part of CPS).

    POST   /_sandbox/advance   {"seconds": s}   move the virtual clock, run due transitions
    GET    /_sandbox/time                        virtual now and speed
    GET    /_sandbox/requests                    the CPS request log (method, path, query, status, time)
    DELETE /_sandbox/requests                    clear it
    GET    /_sandbox/faults                      live fault and latency rules (with firing counts)
    POST   /_sandbox/faults    {"rules": [...], "latency": [...], "seed": n}   add rules
    DELETE /_sandbox/faults                      remove every fault and latency rule
    GET    /_sandbox/state                       summary of the engine's data
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.routes import runtime_of
from reconciler.sandbox.runtime import iso

ADMIN = "/_sandbox"


def _error(status: int, detail: str) -> Response:
    return JSONResponse({"title": "Bad Request" if status == 400 else "Error", "detail": detail},
                        status_code=status, media_type="application/problem+json")


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


async def advance(request: Request) -> Response:
    try:
        body = await _json_body(request)
        seconds = float(body["seconds"])
    except (ValueError, KeyError, TypeError):
        return _error(400, 'expected a JSON body {"seconds": <number>}')
    if seconds < 0:
        return _error(400, "the virtual clock only moves forward")
    runtime = runtime_of(request)
    now = runtime.advance(seconds)
    return JSONResponse({"now": iso(now), "speed": runtime.clock.speed})


async def time(request: Request) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"now": iso(runtime.now()), "speed": runtime.clock.speed})


async def requests(request: Request) -> Response:
    runtime = runtime_of(request)
    if request.method == "DELETE":
        runtime.requests.clear()
        return Response(status_code=204)
    return JSONResponse({"requests": list(runtime.requests)})


async def faults(request: Request) -> Response:
    runtime = runtime_of(request)
    if request.method == "DELETE":
        runtime.faults.clear()
        return Response(status_code=204)
    if request.method == "POST":
        try:
            body = await _json_body(request)
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            runtime.faults.add(body)
        except (ValueError, TypeError) as exc:
            return _error(400, f"bad fault rules: {exc}")
    return JSONResponse(runtime.faults.to_json())


async def state(request: Request) -> Response:
    runtime = runtime_of(request)
    return JSONResponse({"now": iso(runtime.now()), "speed": runtime.clock.speed,
                         "counters": dict(runtime.counters), "engine": runtime.engine_summary()})


def admin_routes() -> list[BaseRoute]:
    """The ``/_sandbox/`` routes."""
    return [
        Route(ADMIN + "/advance", advance, methods=["POST"]),
        Route(ADMIN + "/time", time, methods=["GET"]),
        Route(ADMIN + "/requests", requests, methods=["GET", "DELETE"]),
        Route(ADMIN + "/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route(ADMIN + "/state", state, methods=["GET"]),
    ]
