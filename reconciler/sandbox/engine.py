"""The CPS domain logic of the sandbox: enrollments, changes and their workflow on a virtual clock.

JSON in, JSON out, in the newest media versions' shapes; errors are ``ApiProblem``. No HTTP and
no file I/O: the app validates request bodies against the schemas before calling, and persists
``snapshot()`` after mutating calls (restoring with ``Engine(..., data=snapshot)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.sandbox.ca import CertificateAuthority
from reconciler.sandbox.clock import VirtualClock


@dataclass
class Durations:
    """Seconds of virtual time for each automatic workflow step (CPS-API.md section 10)."""

    pre_verification: float = 60.0
    challenge_issuance: float = 60.0
    token_check_interval: float = 300.0
    issuance: float = 60.0
    third_party_verification: float = 60.0
    staging: float = 1800.0
    production: float = 3600.0
    deletion: float = 3600.0


@dataclass
class EngineConfig:
    """Knobs of the emulated CPS; defaults follow CPS-API.md section 10."""

    create_throttle_seconds: float = 300.0  # 0 disables the one-create-per-5-minutes rule
    validation_policy: str = "trust-ack"  # "trust-ack" | "dns" | "http"
    dns_resolver: str | None = None  # "host:port" queried for dns-01 TXT records
    http_base_url: str | None = None  # where http-01 tokens are fetched from ("http" policy)
    post_verification_warnings: bool = False  # raise DV post-verification warnings on purpose
    durations: Durations = field(default_factory=Durations)
    max_sans: int = 100


class Engine:
    """Emulated CPS v2: enrollments scoped by contract, change workflows, deployments, history."""

    def __init__(
        self,
        config: EngineConfig,
        clock: VirtualClock,
        ca: CertificateAuthority,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.ca = ca
        self._data = data

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def list_enrollments(self, contract_id: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def get_enrollment(self, enrollment_id: int) -> dict[str, Any]:
        raise NotImplementedError

    def create_enrollment(
        self,
        contract_id: str,
        body: dict[str, Any],
        *,
        allow_duplicate_cn: bool = False,
        deploy_not_after: str | None = None,
        deploy_not_before: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def update_enrollment(
        self,
        enrollment_id: int,
        body: dict[str, Any],
        *,
        allow_cancel_pending_changes: bool = False,
        allow_staging_bypass: bool = False,
        force_renewal: bool = False,
        renewal_date_check_override: bool = False,
        allow_missing_certificate_addition: bool = False,
        deploy_not_after: str | None = None,
        deploy_not_before: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def delete_enrollment(
        self,
        enrollment_id: int,
        *,
        allow_cancel_pending_changes: bool = False,
        deploy_not_after: str | None = None,
        deploy_not_before: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def get_change(self, enrollment_id: int, change_id: int) -> dict[str, Any]:
        raise NotImplementedError

    def cancel_change(self, enrollment_id: int, change_id: int) -> dict[str, Any]:
        raise NotImplementedError

    def get_input_info(
        self, enrollment_id: int, change_id: int, info_type: str, shape: str = "default"
    ) -> dict[str, Any]:
        raise NotImplementedError

    def post_input_update(
        self, enrollment_id: int, change_id: int, update_type: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def get_deployment_schedule(self, enrollment_id: int, change_id: int) -> dict[str, Any]:
        raise NotImplementedError

    def put_deployment_schedule(
        self, enrollment_id: int, change_id: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def get_deployments(self, enrollment_id: int) -> dict[str, Any]:
        raise NotImplementedError

    def get_deployment(self, enrollment_id: int, network: str) -> dict[str, Any]:
        raise NotImplementedError

    def get_change_history(self, enrollment_id: int, include_all: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def get_certificate_history(self, enrollment_id: int, include_all: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def get_dv_history(self, enrollment_id: int) -> dict[str, Any]:
        raise NotImplementedError

    def advance(self, seconds: float) -> None:
        raise NotImplementedError
