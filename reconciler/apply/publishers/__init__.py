"""DV challenge publishers (see ``base`` for the contract) and the factory that picks one per spec."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from reconciler.apply.publishers.base import ChallengeRecord, Publisher, PublishResult
from reconciler.apply.publishers.edgedns import EdgeDnsPublisher
from reconciler.apply.publishers.hook import HookPublisher
from reconciler.apply.publishers.ledger import ChallengeLedger
from reconciler.apply.publishers.manual import ManualPublisher
from reconciler.apply.publishers.rfc2136 import Rfc2136Publisher, Rfc2136Settings
from reconciler.apply.workfiles import challenges_dir
from reconciler.errors import ConfigError
from reconciler.spec.models import DvEnrollmentSpec

if TYPE_CHECKING:  # propagation imports this package's base module
    from reconciler.apply.propagation import ChallengeChecker

__all__ = ["ChallengeRecord", "PublishResult", "Publisher", "PublisherFactory"]


class PublisherFactory:
    """Builds the publisher a DV spec asks for, and its propagation check, sharing what one run
    should share.

    ``edgedns_client`` returns the (EdgeGrid-signed) HTTP client for Edge DNS; it is only called
    when a spec uses the edgedns publisher. ``check_by_default`` is what ``validation.check``
    means when a spec leaves it out: the CLI turns it on against Akamai's CPS and off against a
    sandbox (whose made-up names no DNS serves). ``checker`` carries the run's ``dns_check`` and
    ``http_check`` settings (default settings when None).
    """

    def __init__(self, *, root: Path, state_dir: Path, run_id: str,
                 edgedns_client: Callable[[], httpx.AsyncClient] | None = None,
                 check_by_default: bool = False, checker: ChallengeChecker | None = None) -> None:
        self.root = root
        self.state_dir = state_dir
        self.run_id = run_id
        self.check_by_default = check_by_default
        self._checker = checker
        self._edgedns_client = edgedns_client
        self._edgedns_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def checks(self, spec: DvEnrollmentSpec) -> bool:
        """Whether apply checks this spec's published challenges before acknowledging them."""
        return self.check_by_default if spec.validation.check is None else spec.validation.check

    def checker_for(self, spec: DvEnrollmentSpec) -> ChallengeChecker | None:
        """The run's one checker (its discoveries shared by every enrollment), or None: check off."""
        if not self.checks(spec):
            return None
        if self._checker is None:
            from reconciler.apply.propagation import ChallengeChecker

            self._checker = ChallengeChecker()
        return self._checker

    def for_spec(self, spec: DvEnrollmentSpec) -> Publisher:
        validation = spec.validation
        kind = validation.publisher
        if kind == "manual":
            return ManualPublisher(ChallengeLedger(challenges_dir(self.state_dir), spec.name), self.run_id,
                                   confirmation_required=not self.checks(spec))
        if kind == "hook":
            if validation.hook is None:
                raise ConfigError(f"{spec.name}: validation.publisher is hook but validation.hook is missing")
            return HookPublisher(validation.hook.publish, validation.hook.cleanup, cwd=self.root,
                                 timeout=validation.hook.timeout)
        if kind == "rfc2136":
            s = validation.rfc2136
            if s is None:
                raise ConfigError(f"{spec.name}: validation.publisher is rfc2136 but validation.rfc2136 is missing")
            return Rfc2136Publisher(Rfc2136Settings(
                server=s.server, port=s.port, zone=s.zone, tsig_key_name=s.tsig_key_name,
                tsig_algorithm=s.tsig_algorithm, tsig_secret_env=s.tsig_secret_env, ttl=s.ttl))
        if kind == "edgedns":
            if validation.edgedns is None:
                raise ConfigError(f"{spec.name}: validation.publisher is edgedns but validation.edgedns is missing")
            if self._edgedns_client is None:
                raise ConfigError(f"{spec.name}: no Edge DNS API client available for the edgedns publisher")
            return EdgeDnsPublisher(self._edgedns_client(), validation.edgedns.zone, validation.edgedns.ttl,
                                    locks=self._edgedns_locks)
        raise ConfigError(f"{spec.name}: unknown publisher {kind!r}")
