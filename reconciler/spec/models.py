"""Desired-state models: what a user writes in specs/*.yaml.

Field names follow the Akamai Terraform provider's arguments in snake_case. Models are strict
about shape (unknown fields are errors) and frozen. Normalisation happens here so that every
consumer sees one canonical form: hostnames are lower-case A-labels (punycode), and the common
name is appended to ``sans`` when the spec leaves it out (CPS always lists it there).

Every default is stated in the field description; ``reconcile schema`` publishes them.
Cross-field and cross-spec rules (wildcards, SAN limit, certificate files, ...) live in
``reconciler.spec.validate``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reconciler.spec.checks import (
    check_country,
    check_email,
    check_env_name,
    check_slug,
    check_text,
    normalize_hostname,
    parse_days,
)

__all__ = [
    "CertificateFiles", "Certificates", "ClientMutualAuthentication", "Contact", "Csr",
    "DvEnrollmentSpec", "EdgeDnsSettings", "EnrollmentSpec", "HookSettings", "NetworkConfiguration",
    "Organization", "Renewal", "Rfc2136Settings", "SignerSettings", "ThirdPartyEnrollmentSpec", "Validation",
    "SPEC_TYPES", "spec_class_for",
]

# Enumerations CPS defines (enrollment.v12) or that this tool defines for its own settings.
SecureNetwork = Literal["enhanced-tls", "standard-tls"]
Geography = Literal["core", "china+core", "russia+core"]
TlsVersion = Literal["TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3"]
OcspStapling = Literal["on", "off", "not-set"]
SignatureAlgorithm = Literal["SHA-256", "SHA-1"]
CertificateChainType = Literal["default", "symantec1kroot"]
ChallengeMethod = Literal["dns-01", "http-01"]
PublisherKind = Literal["manual", "hook", "edgedns", "rfc2136"]
TsigAlgorithm = Literal["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5"]

Hostname = Annotated[str, AfterValidator(normalize_hostname)]
Email = Annotated[str, AfterValidator(check_email)]
CountryCode = Annotated[str, AfterValidator(check_country)]
Text = Annotated[str, Field(min_length=1), AfterValidator(check_text)]
WarningCode = Annotated[str, Field(pattern=r"^[A-Z0-9_]+$")]
Days = Annotated[float, BeforeValidator(parse_days), Field(gt=0)]
MIN_RENEWAL_DAYS = 7.0
"""Seven days before expiry CPS pushes whatever waits on staging straight to production: a renewal
window must open before that."""


class SpecModel(BaseModel):
    """Base for every spec model: unknown fields are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(SpecModel):
    """A person CPS and the CA may contact (admin_contact, tech_contact)."""

    first_name: Text = Field(examples=["Ada"])
    last_name: Text = Field(examples=["Lovelace"])
    email: Email = Field(examples=["ada@example.com"])
    phone: Text = Field(examples=["+1-617-555-0100"])
    title: Text | None = Field(None, description="Job title. Default: none.")
    organization: Text | None = Field(None, description="Organization the person works for. Default: none.")
    address_line_one: Text | None = Field(None, description="Default: none.")
    address_line_two: Text | None = Field(None, description="Default: none.")
    city: Text | None = Field(None, description="Default: none.")
    region: Text | None = Field(None, description="State or province. Default: none.")
    postal_code: Text | None = Field(None, description="Quote it in YAML ('02142'). Default: none.")
    country_code: CountryCode | None = Field(None, description="ISO 3166 alpha-2, e.g. US. Default: none.")


class Organization(SpecModel):
    """The organization that owns the certificate (CPS ``org``)."""

    name: Text = Field(examples=["Example Inc"])
    phone: Text = Field(examples=["+1-617-555-0100"])
    address_line_one: Text = Field(examples=["150 Broadway"])
    address_line_two: Text | None = Field(None, description="Default: none.")
    city: Text = Field(examples=["Cambridge"])
    region: Text = Field(description="State or province.", examples=["MA"])
    postal_code: Text = Field(description="Quote it in YAML ('02142').", examples=["02142"])
    country_code: CountryCode = Field(description="ISO 3166 alpha-2, e.g. US.", examples=["US"])


class Csr(SpecModel):
    """Subject fields of the CSR CPS generates; the CN is always ``common_name``."""

    country_code: CountryCode | None = Field(None, description="CSR C. Default: none.")
    state: Text | None = Field(None, description="CSR ST. Default: none.")
    city: Text | None = Field(None, description="CSR L. Default: none.")
    organization: Text | None = Field(None, description="CSR O. Default: none.")
    organizational_unit: Text | None = Field(None, description="CSR OU. Default: none.")
    preferred_trust_chain: Text | None = Field(
        None, description="DV only: Let's Encrypt chain to prefer, e.g. intermediate-a. Default: none (CPS picks).")


class ClientMutualAuthentication(SpecModel):
    """Client certificate (mTLS) checking against a Mutual TLS Edge Truststore set."""

    set_id: Text = Field(description="Id of the trust-chain set in the Mutual TLS Edge Truststore.",
                         examples=["12345"])
    send_ca_list_to_client: bool = Field(False, description="Send the CA list in the handshake. Default: false.")
    ocsp_enabled: bool = Field(False, description="OCSP-check client certificates. Default: false.")


def _legacy_tls() -> list[TlsVersion]:
    return ["TLSv1", "TLSv1_1"]


class NetworkConfiguration(SpecModel):
    """How the certificate is deployed on the edge. Changing these needs no new certificate."""

    disallowed_tls_versions: list[TlsVersion] = Field(
        default_factory=_legacy_tls,
        description="TLS versions the edge refuses. Default: [TLSv1, TLSv1_1].")
    clone_dns_names: bool = Field(
        True, description="SNI-only: serve every SAN (true) or only dns_names (false). Default: true.")
    dns_names: list[Hostname] = Field(
        default_factory=list, description="SNI-only with clone_dns_names false: names to serve. Default: [].")
    must_have_ciphers: Text = Field("ak-akamai-2020q1", description="Cipher profile. Default: ak-akamai-2020q1.")
    preferred_ciphers: Text = Field("ak-akamai-2020q1", description="Cipher profile. Default: ak-akamai-2020q1.")
    ocsp_stapling: OcspStapling = Field("on", description="on | off | not-set. Default: on.")
    quic_enabled: bool = Field(False, description="Legacy gQUIC; deprecated by CPS, no effect. Default: false.")
    fips_mode: bool = Field(
        False, description="FIPS mode (enrollment.v12; needs TLSv1_2 or TLSv1_3 allowed). Default: false.")
    client_mutual_authentication: ClientMutualAuthentication | None = Field(
        None, description="mTLS settings. Default: none (no client certificates).")

    @field_validator("ocsp_stapling", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # `ocsp_stapling: on` written by hand, or data read by a YAML 1.1 loader elsewhere.
        if value is True:
            return "on"
        if value is False:
            return "off"
        return value


class HookSettings(SpecModel):
    """Publish DV challenges by running shell commands (cwd: the directory of reconcile.yaml)."""

    publish: Text = Field(description="Shell command run once per challenge; env RECONCILE_* describes it.",
                          examples=["./dns-hook publish"])
    cleanup: Text | None = Field(None, description="Shell command run after validation. Default: none.")
    timeout: float = Field(60.0, gt=0, description="Seconds each command may take. Default: 60.")


class Rfc2136Settings(SpecModel):
    """Publish DNS-01 TXT records with RFC 2136 dynamic updates (TSIG secret from the environment)."""

    server: Text = Field(description="Primary name server address (IP or hostname).", examples=["192.0.2.53"])
    port: int = Field(53, ge=1, le=65535, description="Default: 53.")
    zone: Hostname = Field(description="Zone to update, e.g. example.com.", examples=["example.com"])
    tsig_key_name: Text | None = Field(None, description="TSIG key name. Default: none (unsigned updates).")
    tsig_algorithm: TsigAlgorithm = Field("hmac-sha256", description="Default: hmac-sha256.")
    tsig_secret_env: Annotated[str, AfterValidator(check_env_name)] | None = Field(
        None, description="NAME of the environment variable holding the base64 TSIG secret. Default: none.")
    ttl: int = Field(60, ge=1, description="TXT record TTL in seconds. Default: 60.")

    @field_validator("zone", mode="before")
    @classmethod
    def _strip_root_dot(cls, value: Any) -> Any:
        # Zone names are commonly written absolute ("example.com."); both mean the same zone.
        return value[:-1] if isinstance(value, str) and value.endswith(".") and len(value) > 1 else value


class EdgeDnsSettings(SpecModel):
    """Publish DNS-01 TXT records in Akamai Edge DNS with the same credentials."""

    zone: Hostname = Field(description="Edge DNS zone holding the _acme-challenge records.",
                           examples=["example.com"])
    ttl: int = Field(60, ge=1, description="TXT record TTL in seconds. Default: 60.")


class Validation(SpecModel):
    """DV only: how Let's Encrypt challenges are answered and published."""

    method: ChallengeMethod = Field("dns-01", description="dns-01 | http-01. Default: dns-01.")
    publisher: PublisherKind = Field(
        "manual", description="manual (show them; apply waits) | hook | edgedns | rfc2136. Default: manual.")
    hook: HookSettings | None = Field(None, description="Required when publisher is hook.")
    rfc2136: Rfc2136Settings | None = Field(None, description="Required when publisher is rfc2136.")
    edgedns: EdgeDnsSettings | None = Field(None, description="Required when publisher is edgedns.")
    check: bool | None = Field(
        None, description="Acknowledge challenges only once every authoritative nameserver (dns-01) or the "
        "challenge URL (http-01) serves them. Default: on against Akamai's CPS, off against a sandbox.")


class CertificateFiles(SpecModel):
    """PEM files of one key type; paths are relative to the repository root (reconcile.yaml)."""

    certificate: Text = Field(description="The leaf certificate, PEM.", examples=["certs/shop/rsa.pem"])
    trust_chain: Text | None = Field(None, description="Intermediates, PEM, leaf-issuer first. Default: none.")


class Certificates(SpecModel):
    """Signed certificates to upload. Files may be absent until the CSR has been signed."""

    rsa: CertificateFiles | None = Field(None, description="Default: certs/<name>/rsa.pem (+ rsa-chain.pem).")
    ecdsa: CertificateFiles | None = Field(
        None, description="With dual_stack. Default: certs/<name>/ecdsa.pem (+ ecdsa-chain.pem).")


class SignerSettings(SpecModel):
    """Third-party only: a command that signs each CSR (env RECONCILE_CSR_FILE, _CERT_FILE, _CHAIN_FILE)."""

    command: Text = Field(description="Shell command run once per CSR, cwd the repository root.",
                          examples=["./sign-with-our-ca"])
    timeout: float = Field(120.0, gt=0, description="Seconds the command may take. Default: 120.")


class Renewal(SpecModel):
    """Third-party only: when apply asks CPS for a new certificate (CPS never renews these itself)."""

    before_expiry: Days | None = Field(
        None, description="Renew when the deployed certificate expires within this window (30d, 4w, 720h; a "
        "number is days). More than 7 days: CPS pushes what waits on staging to production 7 days before "
        "expiry. Default: none (renew only when the token changes).")
    token: Text | None = Field(
        None, description="Change it (e.g. 2026-12-key-rotation) to renew once now; state remembers the last "
        "token applied, so the same token never renews twice. Default: none.")

    @field_validator("before_expiry")
    @classmethod
    def _after_the_staging_push(cls, days: float | None) -> float | None:
        if days is not None and days <= MIN_RENEWAL_DAYS:
            raise ValueError(f"a renewal window of {days:g} days is too late: 7 days before expiry CPS pushes "
                             "whatever is ready on staging straight to production; use 8d or more (30d is usual)")
        return days


class _EnrollmentBase(SpecModel):
    """Fields shared by every enrollment type."""

    name: Annotated[str, AfterValidator(check_slug)] = Field(
        description="Stable key in state, unique across the repository; never sent to CPS.", examples=["www"])
    moved_from: Annotated[str, AfterValidator(check_slug)] | None = Field(
        None, description="The name this spec had before a rename: its enrollment is moved to the new name "
        "in state (nothing changes in CPS). Only needed when plan cannot tell the rename by itself. "
        "Default: none.")
    contract_id: Text | None = Field(
        None, description="Akamai contract, e.g. ctr_1-AB123. Default: default_contract from reconcile.yaml.")
    common_name: Hostname = Field(description="The certificate CN; cannot change after creation.",
                                  examples=["www.example.com"])
    sans: list[Hostname] = Field(
        default_factory=list, validate_default=True,  # so the CN is added when sans is omitted
        description="Subject alternative names. The common name is added when missing. At most 100 names.",
        examples=[["example.com", "www.example.com"]])
    secure_network: SecureNetwork = Field(
        "enhanced-tls", description="enhanced-tls | standard-tls; cannot change after creation. Default: enhanced-tls.")
    sni_only: bool = Field(True, description="SNI-only deployment; cannot change after creation. Default: true.")
    geography: Geography = Field("core", description="core | china+core | russia+core. Default: core.")
    certificate_chain_type: CertificateChainType = Field("default", description="Default: default.")
    admin_contact: Contact = Field(description="The person CPS and the CA contact about the certificate.")
    tech_contact: Contact = Field(description="Your Akamai contact (the CA calls them if the admin is unreachable).")
    organization: Organization = Field(description="The organization that owns the certificate.")
    csr: Csr = Field(default_factory=Csr, description="CSR subject. Default: all fields unset.")
    network_configuration: NetworkConfiguration = Field(
        default_factory=NetworkConfiguration, description="Edge deployment settings. Default: see fields.")
    change_management: bool = Field(
        False, description="Hold new certificates on staging until acknowledged. Default: false.")
    acknowledge_pre_verification_warnings: bool = Field(
        False, description="Acknowledge pre-verification warnings automatically. Default: false.")
    acknowledge_post_verification_warnings: bool = Field(
        False, description="Acknowledge post-verification warnings automatically. Default: false.")
    auto_approve_warnings: list[WarningCode] = Field(
        default_factory=list, description="Warning codes acknowledged automatically. Default: [].",
        examples=[["CERTIFICATE_ADDED_TO_TRUST_CHAIN"]])
    acknowledge_change_management: bool = Field(
        False, description="With change_management: let apply promote to production. Default: false.")
    allow_duplicate_common_name: bool = Field(
        False, description="Allow another enrollment with this CN on the contract. Default: false.")
    prevent_destroy: bool = Field(
        False, description="Refuse to delete this enrollment, even with --allow-delete. Default: false.")
    wait_for_deployment: bool = Field(
        True, description="apply waits until the certificate is deployed to production. Default: true.")
    deploy_not_before: date | None = Field(
        None, description="Do not deploy a new certificate to production before this day (YYYY-MM-DD, UTC); "
        "sent with creates, updates and renewals. Default: none.")
    deploy_not_after: date | None = Field(
        None, description="Deploy a new certificate to production no later than this day (YYYY-MM-DD, UTC). "
        "Default: none.")

    @field_validator("sans")
    @classmethod
    def _include_common_name(cls, sans: list[str], info: ValidationInfo) -> list[str]:
        # CPS lists the CN inside the SANs; appending (not prepending) keeps user indices stable.
        cn = info.data.get("common_name")
        if cn and cn not in sans:
            return [*sans, cn]
        return sans


class DvEnrollmentSpec(_EnrollmentBase):
    """A Let's Encrypt domain-validated enrollment (CPS validationType dv, ra lets-encrypt)."""

    type: Literal["dv"] = Field(description="dv")
    signature_algorithm: Literal["SHA-256"] = Field("SHA-256", description="Let's Encrypt signs with SHA-256.")
    validation: Validation = Field(
        default_factory=Validation, description="Challenge handling. Default: dns-01, published manually.")


def _default_files(name: str, key: str) -> dict[str, str]:
    return {"certificate": f"certs/{name}/{key}.pem", "trust_chain": f"certs/{name}/{key}-chain.pem"}


class ThirdPartyEnrollmentSpec(_EnrollmentBase):
    """An enrollment whose certificates you obtain from your own CA and upload."""

    type: Literal["third-party"] = Field(description="third-party")
    signature_algorithm: SignatureAlgorithm = Field(
        "SHA-256", description="SHA-256 | SHA-1. Default: SHA-256. CPS may read it back as unset; not diffed.")
    exclude_sans: bool = Field(False, description="Leave the SANs out of the CSR. Default: false.")
    dual_stack: bool = Field(True, description="RSA and ECDSA certificates (two CSRs). Default: true.")
    certificates: Certificates = Field(
        default_factory=Certificates,
        description="PEM files to upload. Default: under certs/<name>/ for each key type in use.")
    signer: SignerSettings | None = Field(None, description="Command that signs CSRs. Default: none (manual).")
    renewal: Renewal = Field(default_factory=Renewal,
                             description="When apply renews the certificate (a window before expiry, or a token "
                                         "to change). Default: never by itself.")

    @model_validator(mode="before")
    @classmethod
    def _default_certificate_paths(cls, data: Any) -> Any:
        # Paths derive from the name so that import can write specs without inventing anything.
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or "certificates" in data:
            return data
        files = {"rsa": _default_files(data["name"], "rsa")}
        if data.get("dual_stack", True) is not False:
            files["ecdsa"] = _default_files(data["name"], "ecdsa")
        return {**data, "certificates": files}


EnrollmentSpec = Annotated[DvEnrollmentSpec | ThirdPartyEnrollmentSpec, Field(discriminator="type")]
"""Any enrollment spec, discriminated on ``type``."""

SPEC_TYPES: dict[str, type[DvEnrollmentSpec] | type[ThirdPartyEnrollmentSpec]] = {
    "dv": DvEnrollmentSpec,
    "third-party": ThirdPartyEnrollmentSpec,
}


def spec_class_for(type_value: object) -> type[DvEnrollmentSpec] | type[ThirdPartyEnrollmentSpec] | None:
    return SPEC_TYPES.get(type_value) if isinstance(type_value, str) else None
