"""Real X.509 material for the sandbox: a root and an intermediate CA that issue leaf certificates.

One class plays two parts: the sandbox's own CA (it issues DV certificates and the HTTPS server
certificate) and, as a second instance, the customer's third-party CA that signs the CSRs the
sandbox hands out (``sign_csr``). EC P-256 CA keys keep generation fast; keys are created on first
use and cached. The whole CA (keys included: it is a sandbox) serialises to JSON with PEM strings.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes, PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = timedelta(days=3650)
# Backdating absorbs small differences between the virtual clock and the verifier's clock.
BACKDATE = timedelta(hours=1)


def pem_of(cert: x509.Certificate) -> str:
    """PEM text of one certificate."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem_of(key: PrivateKeyTypes) -> str:
    """Unencrypted PKCS#8 PEM of a private key (sandbox material only)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def load_key(pem: str) -> PrivateKeyTypes:
    """Private key from unencrypted PEM."""
    return serialization.load_pem_private_key(pem.encode("ascii"), password=None)


def _ca_key(pem: str) -> ec.EllipticCurvePrivateKey:
    key = load_key(pem)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("sandbox CA keys are EC P-256")
    return key


def _ca_public(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("sandbox CA keys are EC P-256")
    return key


def _san_entries(names: list[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


class CertificateAuthority:
    """Root + intermediate CA issuing leaf certificates and signing CSRs (real X.509)."""

    def __init__(self, name: str = "CPS Sandbox", *, now: datetime | None = None) -> None:
        self.name = name
        self._created = (now or datetime.now(UTC)) - BACKDATE
        self._root_key_pem: str | None = None
        self._root_pem: str | None = None
        self._inter_key_pem: str | None = None
        self._inter_pem: str | None = None
        self._signing_key: ec.EllipticCurvePrivateKey | None = None

    # -- the CA itself -------------------------------------------------------------------------

    def _ensure(self) -> None:
        if self._inter_pem is not None:
            return
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.name),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{self.name} Root CA"),
            ]
        )
        root = self._ca_cert(root_name, root_name, root_key.public_key(), root_key, path_length=1)
        inter_key = ec.generate_private_key(ec.SECP256R1())
        inter_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.name),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{self.name} Intermediate CA"),
            ]
        )
        inter = self._ca_cert(inter_name, root_name, inter_key.public_key(), root_key, path_length=0)
        self._root_key_pem, self._root_pem = key_pem_of(root_key), pem_of(root)
        self._inter_key_pem, self._inter_pem = key_pem_of(inter_key), pem_of(inter)

    def _ca_cert(
        self,
        subject: x509.Name,
        issuer: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        signing_key: ec.EllipticCurvePrivateKey,
        path_length: int,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._created)
            .not_valid_after(self._created + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        return builder.sign(signing_key, hashes.SHA256())

    @property
    def root_pem(self) -> str:
        """The self-signed root certificate (what a client trusts)."""
        self._ensure()
        assert self._root_pem is not None
        return self._root_pem

    @property
    def intermediate_pem(self) -> str:
        """The intermediate certificate that signs every leaf (the trust chain CPS reports)."""
        self._ensure()
        assert self._inter_pem is not None
        return self._inter_pem

    @property
    def root(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.root_pem.encode("ascii"))

    @property
    def intermediate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.intermediate_pem.encode("ascii"))

    # -- issuing -------------------------------------------------------------------------------

    def issue(
        self,
        public_key: CertificatePublicKeyTypes,
        cn: str,
        sans: list[str],
        not_after: datetime | None = None,
        *,
        not_before: datetime | None = None,
        now: datetime | None = None,
        server_auth_only: bool = True,
    ) -> tuple[str, str]:
        """Sign a leaf for ``public_key`` with subject CN ``cn`` and SANs CN + ``sans``.

        Returns ``(leaf_pem, chain_pem)``; the chain is the intermediate only (the root is what a
        client trusts). Validity defaults to 90 days from ``now`` (default: real UTC now).
        """
        self._ensure()
        assert self._inter_key_pem is not None
        moment = now or datetime.now(UTC)
        start = not_before or (moment - BACKDATE)
        end = not_after or (moment + timedelta(days=90))
        intermediate = self.intermediate
        usages = [ExtendedKeyUsageOID.SERVER_AUTH]
        if not server_auth_only:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(intermediate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(_san_entries([cn, *sans])), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(_ca_public(intermediate)),
                critical=False,
            )
        )
        if self._signing_key is None:
            self._signing_key = _ca_key(self._inter_key_pem)
        leaf = builder.sign(self._signing_key, hashes.SHA256())
        return pem_of(leaf), self.intermediate_pem

    def issue_server_certificate(self, hostnames: list[str]) -> tuple[str, str]:
        """An EC server certificate for the sandbox's HTTPS endpoint.

        Returns ``(cert_pem, key_pem)`` where ``cert_pem`` is the full chain (leaf then
        intermediate), ready for ``ssl.SSLContext.load_cert_chain``; trust ``root_pem``.
        """
        if not hostnames:
            raise ValueError("at least one hostname is needed")
        key = ec.generate_private_key(ec.SECP256R1())
        leaf, chain = self.issue(key.public_key(), hostnames[0], hostnames[1:], not_after=None)
        return leaf + chain, key_pem_of(key)

    def sign_csr(
        self,
        csr_pem: str,
        days: int = 90,
        *,
        sans: list[str] | None = None,
        now: datetime | None = None,
        not_before: datetime | None = None,
    ) -> tuple[str, str]:
        """Play the customer's CA: sign a CSR (signature checked) for ``days`` days.

        The leaf carries the CSR's CN and SANs unless ``sans`` overrides them (tests use that to
        produce certificates with missing or extra names). Returns ``(leaf_pem, chain_pem)``.
        """
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
        if not csr.is_signature_valid:
            raise ValueError("CSR signature is not valid")
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(cns[0].value) if cns else ""
        if sans is None:
            try:
                ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                sans = [str(n) for n in ext.value.get_values_for_type(x509.DNSName)]
            except x509.ExtensionNotFound:
                sans = []
        if not cn:
            if not sans:
                raise ValueError("CSR names no host")
            cn = sans[0]
        moment = now or datetime.now(UTC)
        return self.issue(
            csr.public_key(),
            cn,
            sans,
            not_after=(not_before or moment) + timedelta(days=days),
            not_before=not_before,
            now=moment,
        )

    # -- persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """PEM strings of both CA certificates and keys (generated now if still lazy)."""
        self._ensure()
        return {
            "name": self.name,
            "created": self._created.isoformat(),
            "root_key": self._root_key_pem,
            "root": self._root_pem,
            "intermediate_key": self._inter_key_pem,
            "intermediate": self._inter_pem,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CertificateAuthority:
        """Rebuild a CA saved by ``to_json``; it keeps issuing under the same root."""
        ca = cls(str(data["name"]))
        ca._created = datetime.fromisoformat(str(data["created"]))
        ca._root_key_pem = str(data["root_key"])
        ca._root_pem = str(data["root"])
        ca._inter_key_pem = str(data["intermediate_key"])
        ca._inter_pem = str(data["intermediate"])
        return ca
