"""The sandbox as an ASGI application: CPS routes (and the few Edge DNS record-set routes) behind a
gateway that logs, delays, injects faults and checks EdgeGrid signatures, plus the unsigned
``/_sandbox/`` admin routes.

The gateway sits outside Starlette's own error handling (``build_middleware_stack``), so that a
fault can drop the connection instead of being turned into a 500 page.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.cps.clock import RATE_HEADER
from reconciler.sandbox.admin import ADMIN, admin_routes
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.contracts import contract_routes
from reconciler.sandbox.faults import TAG_HEADER, FaultRule
from reconciler.sandbox.media import entity_version
from reconciler.sandbox.quirks import loosen
from reconciler.sandbox.responses import cps_problem, gateway_problem, rate_limited, status_problem
from reconciler.sandbox.routes import cps_routes, host_of
from reconciler.sandbox.runtime import SandboxRuntime, iso


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _path_and_query(scope: Scope) -> str:
    # Signatures cover the path and query exactly as sent, so use the raw bytes when we have them.
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    query = scope.get("query_string") or b""
    text = str(raw_path.decode("latin-1"))
    return text + ("?" + query.decode("latin-1") if query else "")


def _ip(address: object) -> str:
    # In process (httpx's ASGITransport) the "server" is the URL's host name, not an address.
    try:
        return str(ipaddress.ip_address(str(address)))
    except ValueError:
        return "127.0.0.1"


async def _drop_connection(send: Send) -> None:
    """Close the connection without a response byte.

    Under uvicorn, ``send`` is bound to the request cycle, which holds the socket's transport:
    aborting it is what a real dropped connection looks like to the client. In process (httpx's
    ASGITransport) there is no socket, so raise the error httpx itself raises for a server that
    hung up, which the transport hands straight to the client.
    """
    cycle = getattr(getattr(send, "__wrapped__", send), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise httpx.RemoteProtocolError("Server disconnected without sending a response (sandbox fault).")
    transport.abort()
    for _ in range(200):
        if getattr(cycle, "disconnected", True):
            break
        await anyio.sleep(0.001)


def _fault_response(rule: FaultRule, host: str) -> Response:
    if rule.status == 429:
        return rate_limited(rule.retry_after)
    headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else None
    return cps_problem(host, status_problem(rule.status, rule.detail), headers=headers)


class Gateway:
    """What stands in front of CPS: request log, latency, faults, EdgeGrid verification."""

    def __init__(self, app: ASGIApp, runtime: SandboxRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path == ADMIN or path.startswith(ADMIN + "/"):
            await self.app(scope, receive, send)
            return
        await self._cps(scope, receive, send)

    async def _cps(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime, method = self.runtime, scope["method"]
        send = _dated(send, runtime)
        path = scope["path"]
        body = await _read_all(receive)
        entry = runtime.log_request({
            "method": method, "path": path, "query": (scope.get("query_string") or b"").decode("latin-1"),
            "status": None, "time": datetime.now(UTC).isoformat(), "virtualTime": iso(runtime.now()),
            "fault": None, "requestId": f"{runtime.counters['requests'] + 1:08x}",
            "tag": _header(scope, TAG_HEADER.encode()),
        })
        delay = runtime.faults.delay_seconds(method, path)
        if delay > 0:
            await anyio.sleep(delay)
        host = _header(scope, b"host") or "localhost"

        rule = runtime.faults.pick(method, path, "before", entry["tag"])
        if rule is not None:
            entry["fault"] = rule.action
            if rule.action in ("drop", "timeout"):
                if rule.action == "timeout":
                    await anyio.sleep(rule.hold_seconds)
                await _drop_connection(send)
                return
            response = _fault_response(rule, host)
            entry["status"] = response.status_code
            await response(scope, receive, send)
            return

        rejection = runtime.verifier.verify(method=method, host=host, path_and_query=_path_and_query(scope),
                                            body=body, authorization=_header(scope, b"authorization"))
        if rejection is not None:
            client, server = scope.get("client") or ("", 0), scope.get("server") or ("", 0)
            response = gateway_problem(
                status=rejection.status, kind=rejection.kind, title=rejection.title, detail=rejection.detail,
                host=host, path_and_query=_path_and_query(scope), method=method, server_ip=_ip(server[0]),
                client_ip=_ip(client[0]), request_id=entry["requestId"])
            entry["status"] = response.status_code
            await response(scope, receive, send)
            return

        wait = runtime.rate_limited()
        if wait is not None:
            response = rate_limited(wait)
            entry["status"], entry["fault"] = 429, "rate-limit"
            await response(scope, receive, send)
            return

        after = runtime.faults.pick(method, path, "after", entry["tag"])
        if after is None:
            await self.app(scope, _replay(body, receive), _recording(send, entry))
        else:
            await self._run_then_fault(scope, receive, send, body, after, entry, host)
        runtime.after_request()

    async def _run_then_fault(self, scope: Scope, receive: Receive, send: Send, body: bytes, rule: FaultRule,
                              entry: dict[str, Any], host: str) -> None:
        """Let CPS process the request, then lose, replace, truncate, empty or loosen its answer."""
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self.app(scope, _replay(body, receive), keep)
        entry["fault"] = rule.action
        # What CPS answered before the fault replaced it: tells a lost write that landed.
        entry["processedStatus"] = next(m["status"] for m in messages if m["type"] == "http.response.start")
        if rule.action in ("drop", "timeout"):
            if rule.action == "timeout":
                await anyio.sleep(rule.hold_seconds)
            await _drop_connection(send)
            return
        if rule.action == "status":
            response = _fault_response(rule, host)
            entry["status"] = response.status_code
            await response(scope, receive, send)
            return
        start = next(m for m in messages if m["type"] == "http.response.start")
        content = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        status, headers = start["status"], list(start.get("headers", []))
        if rule.action == "truncate":
            # A complete HTTP message whose JSON is cut short: the client must notice on parsing.
            content = content[: rule.keep]
        elif 200 <= status < 300:  # empty and loose change only what CPS did
            if rule.action == "empty":
                status = rule.status if 200 <= rule.status < 300 else status
                content = b""
                headers = [(k, v) for k, v in headers if k.lower() != b"content-type"]
            else:
                content = _loosened(headers, content)
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(content)).encode()))
        entry["status"] = status
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content, "more_body": False})


def _loosened(headers: list[tuple[bytes, bytes]], content: bytes) -> bytes:
    """The JSON answer with production's loose types (``quirks.loosen``) for its media type."""
    media = next((v.decode("latin-1") for k, v in headers if k.lower() == b"content-type"), "")
    served = entity_version(media.split(";", 1)[0].strip())
    if served is None:
        return content
    body = json.loads(content)
    return json.dumps(loosen(served.rsplit(".v", 1)[0], body), separators=(",", ":")).encode("utf-8")


async def _read_all(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _dated(send: Send, runtime: SandboxRuntime) -> Send:
    """Every answer's ``Date`` is CPS's time: the virtual clock's, so a client that judges renewal
    windows and expiry by CPS's clock sees the time ``/_sandbox/advance`` set (and the clock's
    rate, in ``X-Sandbox-Clock-Rate``)."""
    async def dated(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
            headers.append((b"date", format_datetime(runtime.now(), usegmt=True).encode("latin-1")))
            # How fast that clock runs (virtual seconds per real second), so clients keep time with it.
            headers.append((RATE_HEADER.lower().encode(), repr(runtime.clock.speed).encode()))
            message = {**message, "headers": headers}
        await send(message)

    dated.__wrapped__ = send  # type: ignore[attr-defined]  # the connection, for a dropped answer
    return dated


def _recording(send: Send, entry: dict[str, Any]) -> Send:
    async def record(message: Message) -> None:
        if message["type"] == "http.response.start":
            entry["status"] = message["status"]
        await send(message)

    return record


class SandboxApp(Starlette):
    """Starlette app whose outermost layer is the ``Gateway``; ``state.runtime`` is the sandbox."""

    def __init__(self, runtime: SandboxRuntime) -> None:
        async def http_problem(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            what = "resource" if status == 404 else "method"
            detail = f"No such {what}: {request.method} {request.url.path}"
            return cps_problem(host_of(request), status_problem(status, detail))

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            runtime.persist()

        from reconciler.sandbox.edgedns import routes_for_runtime  # Edge DNS record sets (apply room)

        super().__init__(routes=[*cps_routes(), *contract_routes(), *routes_for_runtime(runtime), *admin_routes()],
                         exception_handlers={HTTPException: http_problem}, lifespan=lifespan)
        self.state.runtime = runtime

    @property
    def runtime(self) -> SandboxRuntime:
        runtime: SandboxRuntime = self.state.runtime
        return runtime

    def build_middleware_stack(self) -> ASGIApp:
        return Gateway(super().build_middleware_stack(), self.runtime)


def create_app(config: SandboxConfig) -> SandboxApp:
    """A sandbox serving CPS v2 for ``config.credentials``, restoring ``config.data_dir`` if set."""
    return SandboxApp(SandboxRuntime(config))

