"""Wiring for commands that talk to CPS: which client, with which credentials.

``--sandbox`` gives an in-process emulator whose data lives under ``<root>/.reconcile/sandbox/``;
otherwise credentials come from ``.edgerc`` with flags (and their env vars) over reconcile.yaml
over defaults. An extra CA bundle (``RECONCILE_CA_BUNDLE`` or ``ca_bundle`` in reconcile.yaml)
lets the client trust a sandbox served with ``reconcile sandbox``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from reconciler.cli.context import GlobalOptions
from reconciler.config import Config
from reconciler.cps.client import CpsClient
from reconciler.cps.credentials import Credentials, load_edgerc
from reconciler.sandbox.local import LocalSandbox, open_local_sandbox

CA_BUNDLE_ENV = "RECONCILE_CA_BUNDLE"


def sandbox_dir(config: Config) -> Path:
    return config.root / ".reconcile" / "sandbox"


class LocalSandboxClient(CpsClient):
    """A client bound to an in-process sandbox; closing it saves the sandbox's data."""

    def __init__(self, sandbox: LocalSandbox, *, max_in_flight: int = 10) -> None:
        super().__init__(sandbox.credentials, base_url=sandbox.base_url, transport=sandbox.transport,
                         max_in_flight=max_in_flight, rate_limit=sandbox.rate_limit)
        self.sandbox = sandbox

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await super().__aexit__(exc_type, exc, tb)
        finally:
            self.sandbox.close()

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            self.sandbox.close()


def credentials_for(opts: GlobalOptions, config: Config) -> Credentials:
    """EdgeGrid credentials: --edgerc/--section/--account-switch-key (or env) > reconcile.yaml > defaults."""
    return load_edgerc(opts.edgerc or config.edgerc, opts.section or config.edgerc_section,
                       account_switch_key=opts.account_switch_key or config.account_switch_key)


def open_client(opts: GlobalOptions, config: Config) -> CpsClient:
    """The client a command should use (not yet entered: use it as ``async with``)."""
    if opts.sandbox:
        return LocalSandboxClient(open_local_sandbox(sandbox_dir(config)), max_in_flight=config.parallelism)
    bundle = os.environ.get(CA_BUNDLE_ENV) or (str(config.ca_bundle) if config.ca_bundle else None)
    return CpsClient(credentials_for(opts, config), verify=bundle or True, max_in_flight=config.parallelism)
