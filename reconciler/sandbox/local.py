"""The in-process sandbox behind ``reconcile --sandbox``: no sockets, data kept in a directory.

Requests still go through the whole app (EdgeGrid verification included, and production's
request limits at x100 real time, which the client paces for: ``rate_limit``) via httpx's
``ASGITransport``. Virtual time runs fast by default (x1000, so an hour of CPS deployment takes
3.6 s) so that ``apply`` reaches "deployed" in seconds; ``RECONCILE_SANDBOX_SPEED`` overrides it.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import httpx

from reconciler.cps.credentials import Credentials
from reconciler.cps.pacing import scaled_account_limit
from reconciler.errors import ConfigError
from reconciler.sandbox.app import SandboxApp, create_app
from reconciler.sandbox.clock import VirtualClock
from reconciler.sandbox.config import SandboxConfig, load_or_create_credentials
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.persistence import DataStore

DEFAULT_SPEED = 1000.0
# Production's request limits, run this much faster than real time: the demo's traffic reaches
# them (and its client paces at the same scale) without minutes of waiting.
RATE_LIMIT_SPEED = 100.0
DEMO_ZONE_FILE = "dns-published.txt"
SPEED_ENV = "RECONCILE_SANDBOX_SPEED"
LOCAL_HOST = "cps-sandbox.localhost"


def _speed(speed: float | None) -> float:
    if speed is not None:
        return speed
    raw = os.environ.get(SPEED_ENV)
    if not raw:
        return DEFAULT_SPEED
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{SPEED_ENV} must be a number, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{SPEED_ENV} must not be negative")
    return value


class LocalSandbox:
    """An in-process sandbox: ``transport`` for httpx, ``credentials`` and ``base_url`` for the client."""

    def __init__(self, app: SandboxApp, credentials: Credentials, data_dir: Path) -> None:
        self.app = app
        self.rate_limit = scaled_account_limit(app.runtime.config.rate_limit_speed or app.runtime.clock.speed)
        self.credentials = credentials
        self.data_dir = data_dir
        self.base_url = f"https://{credentials.host}"
        self.transport = httpx.ASGITransport(app=app)

    def __repr__(self) -> str:
        return f"LocalSandbox(data_dir={str(self.data_dir)!r}, speed={self.app.runtime.clock.speed})"

    def advance(self, seconds: float) -> None:
        """Move the virtual clock and run what falls due (persisted)."""
        self.app.runtime.advance(seconds)

    def close(self) -> None:
        """Save what reads may have moved on (issued certificates, finished deployments)."""
        self.app.runtime.persist()


def saved_now(data_dir: Path) -> datetime | None:
    """The in-process sandbox's virtual time as last saved in ``data_dir`` (None before its first
    run): what a signer running beside it signs at, so the certificate is as new to CPS as it is."""
    saved = DataStore(data_dir).load()
    if saved is None:
        return None
    return VirtualClock.from_json(saved["engine"]["clock"], catch_up=False).now()


def open_local_sandbox(data_dir: Path, speed: float | None = None) -> LocalSandbox:
    """Open (or create) the sandbox whose data lives in ``data_dir``."""
    credentials = load_or_create_credentials(data_dir / ".edgerc", LOCAL_HOST)
    # The demo's publish hook (reconcile.yaml) appends its TXT records to .reconcile/dns-published.txt:
    # the sandbox looks there, as well as in its own Edge DNS, when it validates DV challenges.
    engine = EngineConfig(dns_zone_files=(str(data_dir.parent / DEMO_ZONE_FILE),))
    app = create_app(SandboxConfig(credentials=credentials, data_dir=data_dir, speed=_speed(speed),
                                   rate_limit_speed=RATE_LIMIT_SPEED, engine=engine))
    return LocalSandbox(app, credentials.for_host(LOCAL_HOST), data_dir)
