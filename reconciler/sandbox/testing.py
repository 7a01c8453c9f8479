"""Test support: the sandbox over real HTTPS in a background thread, or in process.

    with SandboxServer() as sandbox:                      # 127.0.0.1, a free port, fresh data dir
        async with CpsClient(sandbox.credentials, verify=sandbox.ca_bundle) as client: ...
        sandbox.advance(3600)                             # move the virtual clock an hour
        sandbox.set_faults(rules=[{"path": "/cps/v2/enrollments", "status": 503, "count": 1}])

The control methods go through the unsigned ``/_sandbox/`` admin routes over the same socket, so
they are serialised with the requests the server is handling.
"""

from __future__ import annotations

import dataclasses
import shutil
import ssl
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from reconciler.cps.credentials import Credentials
from reconciler.sandbox.app import SandboxApp, create_app
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.faults import FaultRule, LatencyRule
from reconciler.sandbox.server import make_server, prepare

START_TIMEOUT = 20.0
ZONE_FILE = "dns-published.txt"


def in_process_transport(app: SandboxApp) -> httpx.ASGITransport:
    """An httpx transport that calls ``app`` directly (no sockets, no TLS)."""
    return httpx.ASGITransport(app=app)


class SandboxServer:
    """The sandbox served with uvicorn over HTTPS on 127.0.0.1 from a background thread.

    Without ``data_dir`` a temporary directory is used and removed afterwards. Restarting with the
    same ``data_dir`` keeps the data (and the credentials and CA).
    """

    def __init__(self, *, data_dir: Path | None = None, speed: float = 1.0, engine: EngineConfig | None = None,
                 skew_seconds: float | None = None, faults: list[FaultRule] | None = None,
                 latency: list[LatencyRule] | None = None, seed: int | None = None, port: int = 0,
                 persist_interval: float = 0.0, read_persist_interval: float | None = None,
                 rate_limits: tuple[tuple[int, float], ...] | None = None) -> None:
        self._given_dir = data_dir
        self._options: dict[str, Any] = {"speed": speed, "engine": engine or EngineConfig(),
                                         "faults": list(faults or []), "latency": list(latency or []),
                                         "seed": seed, "persist_interval": persist_interval}
        # Left out unless given: SandboxConfig's defaults stay the only ones.
        if skew_seconds is not None:
            self._options["skew_seconds"] = skew_seconds
        if read_persist_interval is not None:
            self._options["read_persist_interval"] = read_persist_interval
        if rate_limits is not None:  # () turns them off; a test that needs unlimited traffic says so
            self._options["rate_limits"] = rate_limits
        self._port = port
        self._tmp: str | None = None
        self._thread: threading.Thread | None = None
        self._admin: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"SandboxServer(base_url={getattr(self, 'base_url', None)!r})"

    def __enter__(self) -> SandboxServer:
        if self._given_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="cps-sandbox-")
        self.data_dir = self._given_dir or Path(str(self._tmp))
        setup = prepare(self.data_dir, "127.0.0.1", self._port)
        self.setup = setup
        # Besides its own Edge DNS, the sandbox looks at DATA/dns-published.txt: a test's publish
        # hook can append "NAME TXT VALUE" lines there (see ``zone_file``).
        self.zone_file = self.data_dir / ZONE_FILE
        engine: EngineConfig = self._options["engine"]
        options = dict(self._options)
        if not engine.dns_zone_files:
            options["engine"] = dataclasses.replace(engine, dns_zone_files=(str(self.zone_file),))
        self.app = create_app(SandboxConfig(credentials=setup.credentials, data_dir=self.data_dir, **options))
        self.server = make_server(self.app, setup, graceful_seconds=1)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [setup.socket]},
                                        name=f"cps-sandbox-{setup.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not self.server.started:
            self._shutdown()
            raise RuntimeError("the sandbox server did not start")
        self.base_url = setup.base_url
        self.ca_bundle = str(setup.tls.ca_bundle)
        self.credentials: Credentials = setup.client_credentials()
        self.edgerc = setup.edgerc
        self._admin = httpx.Client(base_url=self.base_url + "/_sandbox",
                                   verify=ssl.create_default_context(cafile=self.ca_bundle),
                                   timeout=30.0)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._thread is not None:
            self.server.should_exit = True
            self._thread.join(timeout=15)
            self._thread = None
        self.setup.socket.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        assert self._admin is not None, "the sandbox server is not running"
        response = self._admin.request(method, path, json=json)
        response.raise_for_status()
        return response.json() if response.content else None

    def advance(self, seconds: float) -> str:
        """Move the virtual clock (running due transitions); returns the new virtual now."""
        return str(self._call("POST", "/advance", {"seconds": seconds})["now"])

    def now(self) -> str:
        return str(self._call("GET", "/time")["now"])

    def requests(self) -> list[dict[str, Any]]:
        """The CPS request log: method, path, query, status, time, fault."""
        return list(self._call("GET", "/requests")["requests"])

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def set_faults(self, rules: list[dict[str, Any]] | None = None, latency: list[dict[str, Any]] | None = None,
                   seed: int | None = None) -> dict[str, Any]:
        """Add fault and latency rules (see ``reconciler.sandbox.faults``); returns the live set."""
        body: dict[str, Any] = {"rules": rules or [], "latency": latency or []}
        if seed is not None:
            body["seed"] = seed
        result: dict[str, Any] = self._call("POST", "/faults", body)
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/faults")
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/state")
        return result
