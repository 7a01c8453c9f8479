"""Real X.509 material for the sandbox: a root and an intermediate CA that issue leaf certificates.

EC P-256 CA keys keep generation fast; keys are created lazily and cached. The whole CA (keys
included: it is a sandbox) serialises to JSON with PEM strings so that data survives restarts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes


class CertificateAuthority:
    """Root + intermediate CA issuing server certificates and signing CSRs."""

    def __init__(self, name: str = "CPS Sandbox") -> None:
        self.name = name

    @property
    def root_pem(self) -> str:
        raise NotImplementedError

    def issue(
        self, public_key: CertificatePublicKeyTypes, cn: str, sans: list[str], not_after: datetime | None = None
    ) -> tuple[str, str]:
        raise NotImplementedError

    def issue_server_certificate(self, hostnames: list[str]) -> tuple[str, str]:
        raise NotImplementedError

    def sign_csr(self, csr_pem: str, days: int = 90) -> tuple[str, str]:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CertificateAuthority:
        raise NotImplementedError
