"""Configuration of the emulated CPS engine (CPS-API.md section 10 holds the defaults)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ValidationPolicy = Literal["look", "trust-ack", "dns", "http"]


@dataclass
class Durations:
    """Seconds of virtual time each automatic workflow step takes."""

    pre_verification: float = 60.0
    challenge_issuance: float = 60.0
    token_check_interval: float = 300.0  # automatic DV check (every policy but "trust-ack")
    issuance: float = 60.0
    third_party_verification: float = 60.0
    staging: float = 1800.0
    production: float = 3600.0
    deletion: float = 3600.0  # a deployed enrollment disappears this long after DELETE


@dataclass
class EngineConfig:
    """Knobs of the emulated CPS.

    ``validation_policy`` decides what makes a DV domain valid (``looking`` has the table):
    ``look`` (default) checks, on a schedule and when acknowledged, the sandbox's own Edge DNS,
    the ``dns_zone_files``, the DNS server ``dns_resolver`` ("host:port") and the http-01 token
    at ``http_base_url``; ``dns`` and ``http`` look only there; ``trust-ack`` believes the
    ``lets-encrypt-challenges-completed`` acknowledgement (no automatic checks), for tests that
    need the old trusting behaviour. ``post_verification_warnings`` makes DV
    issuance raise a post-verification warning so clients exercise that acknowledgement.
    ``pre_verification_warnings`` makes every certificate change stop for pre-verification
    acknowledgement (SAN removals always do).
    """

    create_throttle_seconds: float = 300.0  # one create per contract per window; 0 disables
    validation_policy: ValidationPolicy = "look"
    dns_resolver: str | None = None
    dns_zone_files: tuple[str, ...] = ()
    http_base_url: str | None = None
    post_verification_warnings: bool = False
    pre_verification_warnings: bool = False
    durations: Durations = field(default_factory=Durations)
    max_sans: int = 100
    dv_authorization_reuse_days: float = 30.0  # a validated domain needs no new challenge for this long
    dv_renewal_days: float = 20.0  # DV auto-renewal starts this long before expiry
    certificate_days: int = 90  # lifetime of DV certificates the sandbox issues
    check_timeout: float = 3.0  # seconds for one DNS or HTTP validation probe
    fresh_dv_keys: bool = False  # one RSA key per DV certificate instead of one per process (slow)

    def to_json(self) -> dict[str, Any]:
        """Plain data (for the app's state view)."""
        return asdict(self)
