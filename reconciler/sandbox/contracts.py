"""The one Contract API call Akamai tools make before any other: the contracts the credentials see.

``GET /contract-api/v1/contracts/identifiers[?depth=TOP|ALL]`` answers a JSON array of bare
contract ids (``["1-ABC", ...]``). The sandbox's account has no contract hierarchy, so ``TOP`` and
``ALL`` list the same set: the contracts named in ``SandboxConfig.contracts`` plus every contract
that holds (or held) an enrollment. A ``depth`` other than ``TOP``/``ALL`` is a 400. The route sits
behind the same gateway as CPS (EdgeGrid check, request log, faults, rate limits).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.problems import bad_request
from reconciler.sandbox.responses import cps_problem
from reconciler.sandbox.routes import host_of, runtime_of

PATH = "/contract-api/v1/contracts/identifiers"
DEPTHS = ("TOP", "ALL")


async def identifiers(request: Request) -> Response:
    depth = request.query_params.get("depth")
    if depth is not None and depth.upper() not in DEPTHS:
        return cps_problem(host_of(request), bad_request(f"depth must be TOP or ALL, not {depth!r}."))
    runtime = runtime_of(request)
    store = runtime.engine.store
    known = {record["contract"] for record in store.enrollments.values()} | set(store.data["last_create"])
    contracts = sorted(known | {c.removeprefix("ctr_") for c in runtime.config.contracts})
    return Response(json.dumps(contracts), media_type="application/json")


def contract_routes() -> list[BaseRoute]:
    return [Route(PATH, identifiers, methods=["GET"])]
