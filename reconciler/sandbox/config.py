"""What a sandbox instance is: its API client credentials, data directory, clock speed, faults."""

from __future__ import annotations

import configparser
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.cps.credentials import Credentials
from reconciler.sandbox.auth import DEFAULT_MAX_BODY, DEFAULT_SKEW_SECONDS
from reconciler.sandbox.engine import EngineConfig
from reconciler.sandbox.faults import FaultRule, LatencyRule
from reconciler.sandbox.ratelimit import PRODUCTION, Window


def _token(prefix: str) -> str:
    # Shaped like Akamai's ("akab-" + 16 + "-" + 16 lower-case alphanumerics).
    return f"{prefix}{secrets.token_hex(8)}-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class SandboxCredentials:
    """The one EdgeGrid API client the sandbox accepts; secrets stay out of ``repr``."""

    client_token: str = field(repr=False)
    client_secret: str = field(repr=False)
    access_token: str = field(repr=False)

    @classmethod
    def generate(cls) -> SandboxCredentials:
        """Fresh random credentials."""
        return cls(client_token=_token("akab-"), client_secret=secrets.token_urlsafe(32),
                   access_token=_token("akab-"))

    def for_host(self, host: str, max_body: int = DEFAULT_MAX_BODY) -> Credentials:
        """Client-side ``Credentials`` for talking to a sandbox reachable as ``host``."""
        return Credentials(host=host, client_token=self.client_token, client_secret=self.client_secret,
                           access_token=self.access_token, max_body=max_body)


@dataclass
class SandboxConfig:
    """Everything ``create_app`` needs.

    ``data_dir`` None keeps data in memory only; otherwise ``<data_dir>/sandbox.json`` is restored
    at start and rewritten after every mutating request. ``speed`` scales the virtual clock (it
    overrides the speed stored with saved data). ``skew_seconds`` is the EdgeGrid timestamp window,
    on the real clock. ``latency`` and ``faults`` seed the live fault plan (admin routes change it).
    ``persist_interval`` > 0 coalesces writes: a mutating request is saved at the first request
    at least that many real seconds after the previous save, and always at shutdown or
    ``advance`` (snapshots of thousands of certificates take a while; benchmarks want this).
    ``read_persist_interval``: after reads (which may run due transitions), the data is saved
    when this many real seconds passed since the last save. ``contracts``: what the Contract
    API lists besides the contracts that hold enrollments (any contract id works for CPS).
    ``rate_limits``: the per-account request windows (``ratelimit``; ``()`` turns them off);
    they slide on the virtual clock, or at ``rate_limit_speed`` times real time when that is set.
    """

    credentials: SandboxCredentials = field(default_factory=SandboxCredentials.generate)
    data_dir: Path | None = None
    speed: float = 1.0
    engine: EngineConfig = field(default_factory=EngineConfig)
    skew_seconds: float = DEFAULT_SKEW_SECONDS
    max_body: int = DEFAULT_MAX_BODY
    latency: list[LatencyRule] = field(default_factory=list)
    faults: list[FaultRule] = field(default_factory=list)
    seed: int | None = None
    request_log_size: int = 10000
    persist_interval: float = 0.0
    read_persist_interval: float = 2.0
    contracts: tuple[str, ...] = ("1-SANDBOX",)
    rate_limits: tuple[Window, ...] = PRODUCTION
    rate_limit_speed: float | None = None


EDGERC_SECTION = "sandbox"


def load_or_create_credentials(edgerc: Path, host: str, section: str = EDGERC_SECTION) -> SandboxCredentials:
    """The credentials kept in ``edgerc``'s ``[section]`` (created on first use), with ``host`` updated.

    The file is rewritten with mode 0600; other sections in it are kept as they were.
    """
    parser = configparser.ConfigParser(interpolation=None)
    if edgerc.is_file():
        parser.read(edgerc, encoding="utf-8")
    values = parser[section] if parser.has_section(section) else {}
    if all(values.get(key) for key in ("client_token", "client_secret", "access_token")):
        credentials = SandboxCredentials(client_token=values["client_token"],
                                         client_secret=values["client_secret"],
                                         access_token=values["access_token"])
    else:
        credentials = SandboxCredentials.generate()
    parser[section] = {
        "host": host,
        "client_token": credentials.client_token,
        "client_secret": credentials.client_secret,
        "access_token": credentials.access_token,
        "max_body": str(DEFAULT_MAX_BODY),
    }
    edgerc.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(edgerc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        parser.write(handle)
    os.chmod(edgerc, 0o600)
    return credentials
