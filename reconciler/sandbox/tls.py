"""HTTPS material for ``reconcile sandbox``: a private CA and a server certificate, kept in DIR.

The CA (``DIR/tls/ca.json``, keys included, mode 0600) is made once and kept, so a client told to
trust ``DIR/ca.pem`` keeps trusting the server across restarts. The server certificate is renewed
when it is missing, does not name the host being served, or expires within a week.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from reconciler.sandbox.ca import CertificateAuthority

RENEW_BEFORE = timedelta(days=7)
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the CA bundle a client trusts and of the server's certificate chain and key."""

    ca_bundle: Path
    certificate: Path
    key: Path


def _write(path: Path, text: str, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _load_ca(path: Path) -> CertificateAuthority:
    if path.is_file():
        return CertificateAuthority.from_json(json.loads(path.read_text(encoding="utf-8")))
    ca = CertificateAuthority("CPS Sandbox TLS")
    _write(path, json.dumps(ca.to_json()), private=True)
    return ca


def _still_good(certificate: Path, names: list[str]) -> bool:
    try:
        leaf = x509.load_pem_x509_certificates(certificate.read_bytes())[0]
    except (OSError, ValueError, IndexError):
        return False
    if leaf.not_valid_after_utc - RENEW_BEFORE < datetime.now(UTC):
        return False
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = {str(v).lower() for v in san.get_values_for_type(x509.DNSName)}
    present |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    return all(name.lower() in present for name in names)


def ensure_tls(data_dir: Path, host: str) -> TlsFiles:
    """Create or reuse the CA and a server certificate valid for ``host`` and localhost."""
    files = TlsFiles(ca_bundle=data_dir / "ca.pem", certificate=data_dir / "tls" / "server.pem",
                     key=data_dir / "tls" / "server-key.pem")
    names = list(DEFAULT_NAMES)
    if host not in ("", "0.0.0.0", "::") and host not in names:
        names.insert(0, host)
    ca = _load_ca(data_dir / "tls" / "ca.json")
    if not files.ca_bundle.is_file() or files.ca_bundle.read_text(encoding="utf-8") != ca.root_pem:
        _write(files.ca_bundle, ca.root_pem)
    if not (_still_good(files.certificate, names) and files.key.is_file()):
        chain, key = ca.issue_server_certificate(names)
        _write(files.key, key, private=True)
        _write(files.certificate, chain)
    return files
