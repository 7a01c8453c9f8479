"""The sandbox for the fault matrix, served from its own process.

``SandboxServer`` (real HTTPS, real EdgeGrid checks) runs in a child process so that it has a GIL
of its own: the matrix's cells (clients, planning, applying) use one core and the sandbox the
other, instead of both sharing one. The parent asks the child, over a pipe, to add fault rules and
for one cell's part of the request log (filtered there: the whole log is thousands of entries).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from reconciler.cps.credentials import Credentials
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.testing import SandboxServer

START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Endpoint:
    """Where the sandbox answers (picklable)."""

    base_url: str
    credentials: Credentials
    ca_bundle: str


def _serve(speed: float, engine: EngineConfig, persist_interval: float, conn: Connection) -> None:
    """Child process: run the sandbox, report where, then answer commands until told to stop."""
    with SandboxServer(speed=speed, engine=engine, persist_interval=persist_interval) as sandbox:
        conn.send(Endpoint(sandbox.base_url, sandbox.credentials, sandbox.ca_bundle))
        while True:
            command, argument = conn.recv()
            if command == "faults":
                conn.send(sandbox.set_faults(rules=argument))
            elif command == "log":
                conn.send([dict(r) for r in list(sandbox.app.runtime.requests) if r.get("tag") == argument])
            else:
                conn.send(None)
                return


class SandboxProcess:
    """``with SandboxProcess(speed=..., engine=...) as sandbox:`` — ``base_url``, ``credentials``,
    ``ca_bundle``, ``set_faults(rules)``, ``requests(tag)``."""

    def __init__(self, *, speed: float, engine: EngineConfig, persist_interval: float = 0.0) -> None:
        self._args = (speed, engine, persist_interval)
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(*self._args, child), name="fault-matrix-sandbox",
                                        daemon=True)

    def __enter__(self) -> SandboxProcess:
        self._process.start()
        if not self._conn.poll(START_TIMEOUT):
            self._stop()
            raise RuntimeError("the sandbox process did not start")
        endpoint: Endpoint = self._conn.recv()
        self.base_url = endpoint.base_url
        self.credentials = endpoint.credentials
        self.ca_bundle = endpoint.ca_bundle
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    def _ask(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        return self._conn.recv()

    def set_faults(self, rules: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self._ask("faults", rules)
        return result

    def requests(self, tag: str) -> list[dict[str, Any]]:
        """The log entries of requests that carried ``X-Sandbox-Tag: tag``."""
        result: list[dict[str, Any]] = self._ask("log", tag)
        return result

    def _stop(self) -> None:
        if self._process.is_alive():
            try:
                self._ask("stop")
            except (OSError, EOFError):
                pass
            self._process.join(timeout=20)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self._conn.close()
