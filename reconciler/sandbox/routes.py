"""The CPS v2 operations (CPS-API.md section 2, #1-#17) as Starlette routes over the engine.

Every operation follows the same steps: parse path ids (404 when not integers), negotiate
``Accept`` (406), check the body's ``Content-Type`` (415) and validate the body against the
official schema of that version (400), parse query parameters (400), call the engine, persist
after writes, and down-convert the newest shape to the negotiated version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox import media
from reconciler.sandbox.engine import Engine
from reconciler.sandbox.problems import ApiProblem, bad_request, not_found
from reconciler.sandbox.responses import cps_problem, vendor_json
from reconciler.sandbox.runtime import SandboxRuntime
from reconciler.sandbox.schemas import validate_request
from reconciler.sandbox.versions import schema_version, upgrade_enrollment

BASE = "/cps/v2"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def runtime_of(request: Request) -> SandboxRuntime:
    """The runtime the app was created with."""
    runtime: SandboxRuntime = request.app.state.runtime
    return runtime


def host_of(request: Request) -> str:
    return request.headers.get("host") or "localhost"


@dataclass
class Call:
    """One CPS request, negotiated and validated, as the handlers see it."""

    request: Request
    engine: Engine
    version: str
    body: Any = None
    body_version: str | None = None

    def id(self, name: str) -> int:
        raw = self.request.path_params[name]
        if not raw.isdigit():
            raise not_found(f"No {'change' if name == 'change_id' else 'enrollment'} with id {raw!r}.")
        return int(raw)

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.request.query_params.get(name)
        if required and not value:
            raise bad_request(f"The query parameter {name} is required.")
        return value or None

    def flag(self, name: str) -> bool:
        value = self.request.query_params.get(name)
        if value is None:
            return False
        if value.lower() not in ("true", "false"):
            raise bad_request(f"The query parameter {name} must be true or false, not {value!r}.")
        return value.lower() == "true"

    def day(self, name: str) -> str | None:
        value = self.request.query_params.get(name)
        if value is None:
            return None
        try:
            if not _DATE.match(value):
                raise ValueError(value)
            date.fromisoformat(value)
        except ValueError:
            raise bad_request(f"The query parameter {name} must be a date (YYYY-MM-DD), not {value!r}.") from None
        return value

    def contract(self) -> str:
        contract = self.text("contractId", required=True)
        assert contract is not None
        if contract.startswith("ctr_"):
            # The API wants the bare id; tools strip the prefix (CPS-API.md section 2, note 1).
            raise bad_request(f"contractId must be the bare contract id, without the ctr_ prefix: {contract!r}.")
        return contract

    def deploy_window(self) -> dict[str, str | None]:
        return {"deploy_not_after": self.day("deploy-not-after"),
                "deploy_not_before": self.day("deploy-not-before")}


Handler = Callable[[Call], tuple[int, dict[str, Any]]]


async def _read_body(request: Request, consumes: Sequence[str]) -> tuple[str, Any]:
    content_version = media.negotiate_content_type(request.headers.get("content-type"), consumes)
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("The request body is not valid JSON.") from None
    message = validate_request(schema_version(content_version), body)
    if message is not None:
        raise bad_request(f"The request body is not a valid {content_version}: {message}")
    return content_version, body


def operation(produces: Sequence[str] | Callable[[Request], Sequence[str]], handler: Handler, *,
              consumes: Sequence[str] | None = None, writes: bool = False
              ) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler`` with negotiation, validation, persistence and problem rendering."""

    async def endpoint(request: Request) -> Response:
        runtime = runtime_of(request)
        try:
            served = produces(request) if callable(produces) else produces
            version = media.negotiate_accept(request.headers.get("accept"), served)
            call = Call(request, runtime.engine, version)
            if consumes is not None:
                call.body_version, call.body = await _read_body(request, consumes)
            status, body = handler(call)
        except ApiProblem as problem:
            return cps_problem(host_of(request), problem)
        if writes:
            runtime.wrote()
        return vendor_json(status, media.convert(body, version), version)

    return endpoint


def _info_versions(request: Request) -> Sequence[str]:
    versions = media.INFO_TYPES.get(request.path_params["info_type"])
    if versions is None:
        raise not_found(f"No input information of type {request.path_params['info_type']!r}.")
    return versions


def _update_versions(request: Request) -> Sequence[str]:
    if request.path_params["update_type"] not in media.UPDATE_TYPES:
        raise not_found(f"No input update of type {request.path_params['update_type']!r}.")
    return media.CHANGE_ID


def _ok(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return 200, body


def _list(c: Call) -> tuple[int, dict[str, Any]]:
    # Without contractId: every enrollment the credentials can see (clients have relied on it
    # since 2018, although the definition marks the parameter required); an empty or malformed
    # one is still 400.
    contract = c.contract() if "contractId" in c.request.query_params else None
    return _ok({"enrollments": c.engine.list_enrollments(contract)})


def _enrollment_body(c: Call, replaces: int | None = None) -> dict[str, Any]:
    """The request body as ``enrollment.v12`` (older versions name and nest a few fields
    differently, and leave out some: a PUT keeps those from the enrollment it replaces)."""
    if c.body_version == media.ENROLLMENT[0]:
        return dict(c.body)
    stored = c.engine.get_enrollment(replaces) if replaces is not None else None
    return upgrade_enrollment(c.body, c.body_version or "", stored)


def _create(c: Call) -> tuple[int, dict[str, Any]]:
    return c.engine.create_enrollment(c.contract(), _enrollment_body(c), allow_duplicate_cn=c.flag("allow-duplicate-cn"),
                                      **c.deploy_window())


def _update(c: Call) -> tuple[int, dict[str, Any]]:
    return c.engine.update_enrollment(
        c.id("enrollment_id"), _enrollment_body(c, c.id("enrollment_id")),
        allow_cancel_pending_changes=c.flag("allow-cancel-pending-changes"),
        allow_staging_bypass=c.flag("allow-staging-bypass"),
        force_renewal=c.flag("force-renewal"),
        renewal_date_check_override=c.flag("renewal-date-check-override"),
        allow_missing_certificate_addition=c.flag("allow-missing-certificate-addition"),
        **c.deploy_window(),
    )


def _delete(c: Call) -> tuple[int, dict[str, Any]]:
    return c.engine.delete_enrollment(c.id("enrollment_id"),
                                      allow_cancel_pending_changes=c.flag("allow-cancel-pending-changes"),
                                      **c.deploy_window())


def _info(c: Call) -> tuple[int, dict[str, Any]]:
    shape = "deployment" if c.version.startswith("deployment.") else "default"
    return _ok(c.engine.get_input_info(c.id("enrollment_id"), c.id("change_id"),
                                       c.request.path_params["info_type"], shape))


def _input_update(c: Call) -> tuple[int, dict[str, Any]]:
    return _ok(c.engine.post_input_update(c.id("enrollment_id"), c.id("change_id"),
                                          c.request.path_params["update_type"], c.body))


def _update_body_versions(request: Request) -> Sequence[str]:
    return media.UPDATE_TYPES.get(request.path_params["update_type"], ())


async def _input_update_endpoint(request: Request) -> Response:
    # The accepted body versions depend on the path segment, so the consumes list is per request.
    inner = operation(_update_versions, _input_update, consumes=_update_body_versions(request), writes=True)
    return await inner(request)


def cps_routes() -> list[BaseRoute]:
    """Every CPS operation the sandbox serves, under ``/cps/v2``."""
    e = BASE + "/enrollments/{enrollment_id}"
    ch = e + "/changes/{change_id}"

    def eid(c: Call) -> int:
        return c.id("enrollment_id")

    def cid(c: Call) -> int:
        return c.id("change_id")

    return [
        Route(BASE + "/enrollments", operation(media.ENROLLMENTS, _list), methods=["GET"]),
        Route(BASE + "/enrollments", operation(media.ENROLLMENT_STATUS, _create, consumes=media.ENROLLMENT,
                                               writes=True), methods=["POST"]),
        Route(e, operation(media.ENROLLMENT, lambda c: _ok(c.engine.get_enrollment(eid(c)))), methods=["GET"]),
        Route(e, operation(media.ENROLLMENT_STATUS, _update, consumes=media.ENROLLMENT, writes=True),
              methods=["PUT"]),
        Route(e, operation(media.ENROLLMENT_STATUS, _delete, writes=True), methods=["DELETE"]),
        Route(ch, operation(media.CHANGE, lambda c: _ok(c.engine.get_change(eid(c), cid(c)))), methods=["GET"]),
        Route(ch, operation(media.CHANGE_ID, lambda c: _ok(c.engine.cancel_change(eid(c), cid(c))),
                            writes=True), methods=["DELETE"]),
        Route(ch + "/deployment-schedule",
              operation(media.DEPLOYMENT_SCHEDULE, lambda c: _ok(c.engine.get_deployment_schedule(eid(c), cid(c)))),
              methods=["GET"]),
        Route(ch + "/deployment-schedule",
              operation(media.CHANGE_ID, lambda c: _ok(c.engine.put_deployment_schedule(eid(c), cid(c), c.body)),
                        consumes=media.DEPLOYMENT_SCHEDULE, writes=True), methods=["PUT"]),
        Route(ch + "/input/info/{info_type}", operation(_info_versions, _info), methods=["GET"]),
        Route(ch + "/input/update/{update_type}", _input_update_endpoint, methods=["POST"]),
        Route(e + "/deployments", operation(media.DEPLOYMENTS, lambda c: _ok(c.engine.get_deployments(eid(c)))),
              methods=["GET"]),
        Route(e + "/deployments/production",
              operation(media.DEPLOYMENT, lambda c: _ok(c.engine.get_deployment(eid(c), "production"))),
              methods=["GET"]),
        Route(e + "/deployments/staging",
              operation(media.DEPLOYMENT, lambda c: _ok(c.engine.get_deployment(eid(c), "staging"))),
              methods=["GET"]),
        Route(e + "/history/changes",
              operation(media.CHANGE_HISTORY,
                        lambda c: _ok(c.engine.get_change_history(eid(c), include_all=c.flag("includeAll")))),
              methods=["GET"]),
        Route(e + "/history/certificates",
              operation(media.CERTIFICATE_HISTORY,
                        lambda c: _ok(c.engine.get_certificate_history(eid(c), include_all=c.flag("includeAll")))),
              methods=["GET"]),
        Route(e + "/dv-history", operation(media.DV_HISTORY, lambda c: _ok(c.engine.get_dv_history(eid(c)))),
              methods=["GET"]),
    ]
