"""The few Edge DNS routes the sandbox serves: record sets of one name and type.

``/config-dns/v2/zones/{zone}/names/{name}/types/{type}`` with GET (200 or 404), POST (201;
409 when the set exists), PUT (200; 404 when it does not) and DELETE (204; 404), bodies as the
Edge DNS OpenAPI ``recordset`` schema: ``{"name", "type", "ttl", "rdata": [...]}`` with no other
keys. Every zone exists (the sandbox has no zone management); a name outside its zone, or a
body whose name/type disagree with the URL, is a 400. Errors are problem+json like the rest of
the sandbox. Record sets persist to a JSON file when a path is given.

In the sandbox app the routes sit behind the same gateway as CPS (EdgeGrid check, request log,
faults); :func:`edgedns_routes` can also take an ``authorize`` callable (request, body) -> error
response or None, for use outside that gateway.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PREFIX = "/config-dns/v2"
ROUTE = PREFIX + "/zones/{zone}/names/{name}/types/{type}"
Authorize = Callable[[Request, bytes], Awaitable[Response | None]]


class RecordStore:
    """Record sets keyed by (zone, name, type), lower-cased names; optional JSON persistence."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._sets: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            self._sets = json.loads(path.read_text(encoding="utf-8")).get("recordsets", {})

    @staticmethod
    def key(zone: str, name: str, rtype: str) -> str:
        return f"{zone.rstrip('.').lower()}|{name.rstrip('.').lower()}|{rtype.upper()}"

    def get(self, zone: str, name: str, rtype: str) -> dict[str, Any] | None:
        found = self._sets.get(self.key(zone, name, rtype))
        return dict(found) if found is not None else None

    def put(self, zone: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._sets[self.key(zone, record["name"], record["type"])] = dict(record)
            self._save()

    def delete(self, zone: str, name: str, rtype: str) -> bool:
        with self._lock:
            gone = self._sets.pop(self.key(zone, name, rtype), None) is not None
            self._save()
            return gone

    def all(self) -> list[dict[str, Any]]:
        return [dict(v) for v in self._sets.values()]

    def txt_values(self, name: str) -> list[str]:
        """TXT values published at ``name`` in any zone (what a resolver would answer)."""
        suffix = f"|{name.rstrip('.').lower()}|TXT"
        return [_unquote(r) for key, record in self._sets.items() if key.endswith(suffix)
                for r in record.get("rdata", [])]

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".edgedns.", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"recordsets": self._sets}, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


def _unquote(rdata: str) -> str:
    """The value of a TXT rdata in master file format: quoted segments joined, escapes undone."""
    text = rdata.strip()
    if not text.startswith('"'):
        return text
    out, inside, escaped = [], False, False
    for char in text:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\" and inside:
            escaped = True
        elif char == '"':
            inside = not inside
        elif inside:
            out.append(char)
    return "".join(out)


def _problem(request: Request, status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": f"https://problems.luna.akamaiapis.net/config-dns/v2/{title.lower().replace(' ', '-')}",
         "title": title, "status": status, "detail": detail, "instance": str(request.url.path)},
        status_code=status, media_type="application/problem+json",
    )


def _check_body(request: Request, body: bytes, name: str, rtype: str) -> dict[str, Any] | JSONResponse:
    try:
        data = json.loads(body)
    except ValueError:
        return _problem(request, 400, "Bad Request", "body is not JSON")
    required = {"name", "type", "ttl", "rdata"}
    if not isinstance(data, dict) or set(data) != required:
        return _problem(request, 400, "Bad Request", "a record set has exactly name, type, ttl and rdata")
    if not (isinstance(data["name"], str) and isinstance(data["type"], str) and isinstance(data["ttl"], int)
            and isinstance(data["rdata"], list) and data["rdata"]
            and all(isinstance(r, str) for r in data["rdata"])):
        return _problem(request, 400, "Bad Request", "name/type strings, ttl integer, rdata non-empty strings")
    if data["name"].rstrip(".").lower() != name or data["type"].upper() != rtype:
        return _problem(request, 400, "Bad Request", "name and type in the body must match the URL")
    return {**data, "name": name, "type": rtype}


def edgedns_routes(store: RecordStore, authorize: Authorize | None = None) -> list[Route]:
    """The record-set routes, to add to the sandbox app's route list."""

    async def recordset(request: Request) -> Response:
        body = await request.body()
        if authorize is not None:
            refused = await authorize(request, body)
            if refused is not None:
                return refused
        zone = request.path_params["zone"].rstrip(".").lower()
        name = request.path_params["name"].rstrip(".").lower()
        rtype = request.path_params["type"].upper()
        if name != zone and not name.endswith("." + zone):
            return _problem(request, 400, "Bad Request", f"{name} is not in zone {zone}")
        current = store.get(zone, name, rtype)
        if request.method == "GET":
            if current is None:
                return _problem(request, 404, "Not Found", f"no {rtype} record set at {name}")
            return JSONResponse(current)
        if request.method == "DELETE":
            if not store.delete(zone, name, rtype):
                return _problem(request, 404, "Not Found", f"no {rtype} record set at {name}")
            return Response(status_code=204)
        checked = _check_body(request, body, name, rtype)
        if isinstance(checked, JSONResponse):
            return checked
        if request.method == "POST" and current is not None:
            return _problem(request, 409, "Conflict", f"a {rtype} record set already exists at {name}")
        if request.method == "PUT" and current is None:
            return _problem(request, 404, "Not Found", f"no {rtype} record set at {name}")
        store.put(zone, checked)
        if request.method == "POST":
            return JSONResponse(checked, status_code=201,
                                headers={"Location": f"{PREFIX}/zones/{zone}/names/{name}/types/{rtype}"})
        return JSONResponse(checked)

    return [Route(ROUTE, recordset, methods=["GET", "POST", "PUT", "DELETE"])]


def routes_for_runtime(runtime: Any) -> list[Route]:
    """The routes for a sandbox runtime; record sets persist next to its data (``edgedns.json``).

    The engine's dns-01 checks (``looking``) read these record sets: publishing through Edge
    DNS really validates a domain.
    """
    data_dir = getattr(runtime.config, "data_dir", None)
    store = RecordStore(Path(data_dir) / "edgedns.json" if data_dir is not None else None)
    engine = getattr(runtime, "engine", None)
    if engine is not None and hasattr(engine, "set_txt_lookup"):
        engine.set_txt_lookup(store.txt_values)
    return edgedns_routes(store)
