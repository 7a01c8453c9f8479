"""Serving the sandbox over HTTPS with uvicorn (``reconcile sandbox`` and the test server).

``prepare`` binds the listening socket first (so that port 0 resolves to a real port before
anything is written), makes the TLS material, and writes ``DIR/.edgerc`` with a ``[sandbox]``
section whose ``host`` is the address a client should use. ``make_server`` builds the uvicorn
server for an app; ``Server.run(sockets=[setup.socket])`` serves it.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from reconciler.cps.credentials import Credentials
from reconciler.sandbox.app import SandboxApp
from reconciler.sandbox.config import EDGERC_SECTION, SandboxCredentials, load_or_create_credentials
from reconciler.sandbox.tls import TlsFiles, ensure_tls

DEFAULT_DATA_DIR = Path(".reconcile/sandbox-server")
CA_BUNDLE_ENV = "RECONCILE_CA_BUNDLE"


@dataclass
class ServerSetup:
    """Everything a started sandbox server needs and tells its users."""

    data_dir: Path
    host: str
    port: int
    socket: socket.socket
    tls: TlsFiles
    edgerc: Path
    credentials: SandboxCredentials

    @property
    def api_host(self) -> str:
        """``host:port`` as clients write it in ``.edgerc`` (and sign it in ``Host``)."""
        return api_host(self.host, self.port)

    @property
    def base_url(self) -> str:
        return f"https://{self.api_host}"

    def client_credentials(self) -> Credentials:
        return self.credentials.for_host(self.api_host)


def api_host(host: str, port: int) -> str:
    """The address clients use for a server bound to ``host``: wildcards become loopback."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else ("localhost" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    # Clients send (and sign) Host without the default port, so the .edgerc host must too.
    return shown if port == 443 else f"{shown}:{port}"


def prepare(data_dir: Path, host: str = "127.0.0.1", port: int = 0) -> ServerSetup:
    """Bind ``host:port`` (0 = any free port), make TLS files and the ``.edgerc`` in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this: without it a TLS response written in two records waits
    # for the client's delayed ACK (~40 ms a request; found by benchmarks/run.py).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    # Listen now: connections made right after the banner wait in the backlog until uvicorn runs.
    sock.listen(128)
    sock.set_inheritable(True)
    bound_port = int(sock.getsockname()[1])
    tls = ensure_tls(data_dir, host)
    edgerc = data_dir / ".edgerc"
    credentials = load_or_create_credentials(edgerc, api_host(host, bound_port), EDGERC_SECTION)
    return ServerSetup(data_dir, host, bound_port, sock, tls, edgerc, credentials)


def make_server(app: SandboxApp, setup: ServerSetup, log_level: str = "warning",
                graceful_seconds: int = 5) -> uvicorn.Server:
    """A uvicorn server for ``app`` over HTTPS with the setup's certificate (h11, no proxy headers).

    On shutdown, idle keep-alive TLS connections wait for the client's close_notify; after
    ``graceful_seconds`` they are dropped (the data is persisted either way).
    """
    config = uvicorn.Config(
        app,
        ssl_certfile=str(setup.tls.certificate),
        ssl_keyfile=str(setup.tls.key),
        http="h11",
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        date_header=False,  # the app sends the virtual clock's Date (sandbox/app.py)
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=graceful_seconds,
    )
    return _Server(config)


class _Server(uvicorn.Server):
    """uvicorn, but idle keep-alive connections are cut at shutdown.

    A graceful TLS close waits for the client's close_notify, which a client that already hung
    up (or sits idle in a pool) never sends, so shutdown would hang for the grace period.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            if transport is not None and (cycle is None or cycle.response_complete):
                transport.abort()
        await super().shutdown(sockets)


def instructions(setup: ServerSetup) -> str:
    """How to point the CLI (or any EdgeGrid client) at this server; no secrets in it."""
    edgerc, ca = setup.edgerc, setup.tls.ca_bundle
    return "\n".join([
        f"CPS sandbox listening on {setup.base_url}/cps/v2 (admin routes: {setup.base_url}/_sandbox/)",
        f"  credentials: {edgerc} section [{EDGERC_SECTION}]",
        f"  CA bundle:   {ca}",
        "Point the CLI at it:",
        f"  export {CA_BUNDLE_ENV}={ca}",
        f"  reconcile --edgerc {edgerc} --section {EDGERC_SECTION} plan",
        "(or set ca_bundle: in reconcile.yaml). Stop with Ctrl-C.",
    ])


def quiet_uvicorn() -> None:
    """uvicorn logs every handshake failure at INFO/ERROR; a sandbox only wants real problems."""
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
