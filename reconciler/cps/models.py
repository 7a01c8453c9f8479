"""Pydantic models of the CPS wire documents (newest media versions, see ``media``).

Every model keeps fields it does not know (``extra="allow"``): CPS adds fields over time and a
GET-modify-PUT round trip must not drop them. Python names are snake_case, wire names camelCase;
both are accepted on input. ``to_wire()`` gives back exactly the keys that were read or set, under
their wire names, so a model read from CPS dumps to the same document. Almost every field is
optional because CPS sends ``null`` or omits fields more often than its definitions admit.

Reading is lenient about types production sends loosely (CPS-API.md section 12): booleans as the
strings ``"true"``/``"false"`` (``ocspStapled`` in change-management info), numeric ids as strings,
``null`` for an empty list. Models hold the coerced values, so ``to_wire()`` is the normalised
document; an enrollment read from CPS also keeps the document as sent, and ``Enrollment.echo()``
gives that back (with only what was changed since) for a GET-modify-PUT.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    PrivateAttr,
    model_validator,
)
from pydantic.alias_generators import to_camel

from reconciler.cps.links import enrollment_id_from_link, id_from_link

T = TypeVar("T")


def _none_as_empty(value: Any) -> Any:
    return [] if value is None else value


# A list CPS may send as ``null`` (its usual way of saying "none"); read as empty.
Items = Annotated[list[T], BeforeValidator(_none_as_empty)]


class WireModel(BaseModel):
    """Base of every wire model: camelCase aliases, unknown fields kept, lax on input."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    def to_wire(self) -> dict[str, Any]:
        """The document under wire names, with only the keys that were read or set."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


# --- enrollment ---------------------------------------------------------------------------------

class Contact(WireModel):
    """``adminContact`` / ``techContact``."""

    first_name: str | None = None
    last_name: str | None = None
    title: str | None = None
    organization_name: str | None = None
    email: str | None = None
    phone: str | None = None
    address_line_one: str | None = None
    address_line_two: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Organization(WireModel):
    """``org``: the organisation named in OV/EV certificates and used for contact."""

    name: str | None = None
    phone: str | None = None
    address_line_one: str | None = None
    address_line_two: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class EnrollmentCsr(WireModel):
    """``csr`` inside an enrollment: the subject CPS puts in the CSRs it generates."""

    cn: str
    sans: list[str] | None = None
    c: str | None = None
    st: str | None = None
    l: str | None = None  # noqa: E741 - the wire name
    o: str | None = None
    ou: str | None = None
    preferred_trust_chain: str | None = None


class DnsNameSettings(WireModel):
    clone_dns_names: bool | None = None
    dns_names: list[str] | None = None


class NetworkConfiguration(WireModel):
    """``networkConfiguration`` of an enrollment; ``authenticationOptions`` of mTLS stays a dict."""

    geography: str | None = None
    secure_network: str | None = None
    sni_only: bool | None = None
    quic_enabled: bool | None = None
    disallowed_tls_versions: list[str] | None = None
    must_have_ciphers: str | None = None
    preferred_ciphers: str | None = None
    ocsp_stapling: str | None = None
    dns_name_settings: DnsNameSettings | None = None
    client_mutual_authentication: dict[str, Any] | None = None
    fips_mode: bool | None = None


class PendingChange(WireModel):
    location: str
    change_type: str | None = None

    @property
    def change_id(self) -> int:
        return id_from_link(self.location)


class ThirdParty(WireModel):
    exclude_sans: bool | None = None


class Enrollment(WireModel):
    """``enrollment.v12`` (also an item of ``enrollments.v12``)."""

    id: int | None = None
    location: str | None = None
    ra: str | None = None
    validation_type: str | None = None
    certificate_type: str | None = None
    certificate_chain_type: str | None = None
    signature_algorithm: str | None = None
    change_management: bool | None = None
    enable_multi_stacked_certificates: bool | None = None
    auto_renewal_start_time: str | None = None
    max_allowed_san_names: int | None = None
    max_allowed_wildcard_san_names: int | None = None
    assigned_slots: list[int] | None = None
    production_slots: list[int] | None = None
    staging_slots: list[int] | None = None
    org_id: int | str | None = None
    pending_changes: list[PendingChange] | None = None
    third_party: ThirdParty | None = None
    csr: EnrollmentCsr | None = None
    org: Organization | None = None
    admin_contact: Contact | None = None
    tech_contact: Contact | None = None
    network_configuration: NetworkConfiguration | None = None

    _sent: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_sent(cls, data: Any, handler: ModelWrapValidatorHandler[Enrollment]) -> Enrollment:
        model = handler(data)
        if isinstance(data, dict):
            model._sent = data
        return model

    def echo(self) -> dict[str, Any]:
        """The enrollment to send back: each value as CPS sent it, unless it was changed since
        (a string ``"false"`` stays a string, an id stays as written); new keys as ``to_wire()``."""
        current = self.to_wire()
        return current if self._sent is None else _as_sent(self._sent, current)

    @property
    def enrollment_id(self) -> int:
        """The id, from ``id`` or else from ``location``."""
        if self.id is not None:
            return self.id
        if self.location:
            return id_from_link(self.location)
        raise ValueError("enrollment carries neither id nor location")

    @property
    def pending_change_ids(self) -> list[int]:
        return [p.change_id for p in self.pending_changes or []]


def _same_value(sent: Any, current: Any) -> bool:
    """Whether ``current`` is what lenient reading made of ``sent`` (nothing changed it since)."""
    if sent == current and type(sent) is type(current):
        return True
    if isinstance(current, bool):
        return isinstance(sent, str) and sent.strip().lower() == str(current).lower()
    if isinstance(current, int):
        return isinstance(sent, str) and sent.strip() == str(current)
    return sent is None and current == []


def _as_sent(sent: Any, current: Any) -> Any:
    """``current`` with every unchanged value put back as it was sent (recursively)."""
    if isinstance(sent, dict) and isinstance(current, dict):
        return {key: _as_sent(sent[key], value) if key in sent else value for key, value in current.items()}
    if isinstance(sent, list) and isinstance(current, list) and len(sent) == len(current):
        return [_as_sent(s, c) for s, c in zip(sent, current, strict=True)]
    return sent if _same_value(sent, current) else current


class Enrollments(WireModel):
    enrollments: list[Enrollment]


class EnrollmentStatus(WireModel):
    """``enrollment-status.v1``: what create, update and delete answer."""

    enrollment: str
    changes: Items[str] = []

    @property
    def enrollment_id(self) -> int:
        return id_from_link(self.enrollment)

    @property
    def change_ids(self) -> list[int]:
        return [id_from_link(c) for c in self.changes]


# --- change workflow -----------------------------------------------------------------------------

class ChangeError(WireModel):
    code: str | None = None
    description: str | None = None
    timestamp: str | None = None


class DeploymentSchedule(WireModel):
    """``deployment-schedule.v1`` (also ``statusInfo.deploymentSchedule``)."""

    not_before: str | None = None
    not_after: str | None = None


class StatusInfo(WireModel):
    state: str | None = None
    status: str | None = None
    description: str | None = None
    error: ChangeError | None = None
    deployment_schedule: DeploymentSchedule | None = None


class AllowedInput(WireModel):
    """One input the change accepts; follow ``info`` and ``update`` verbatim (CPS-API.md 5.1)."""

    type: str
    required_to_proceed: bool | None = None
    info: str | None = None
    update: str | None = None


class Change(WireModel):
    """``change.v2``: where a change is and which inputs it waits for."""

    status_info: StatusInfo | None = None
    allowed_input: Items[AllowedInput] = []

    @property
    def state(self) -> str | None:
        return self.status_info.state if self.status_info else None

    @property
    def status(self) -> str | None:
        return self.status_info.status if self.status_info else None

    def allowed(self, input_type: str) -> AllowedInput | None:
        """The allowed input of that ``type``, if the change offers it now."""
        return next((a for a in self.allowed_input if a.type == input_type), None)


class ChangeId(WireModel):
    """``change-id.v1``: what cancel, input updates and schedule updates answer."""

    change: str

    @property
    def change_id(self) -> int:
        return id_from_link(self.change)

    @property
    def enrollment_id(self) -> int:
        return enrollment_id_from_link(self.change)


class Challenge(WireModel):
    type: str | None = None
    token: str | None = None
    full_path: str | None = None
    redirect_full_path: str | None = None
    response_body: str | None = None
    status: str | None = None
    error: str | None = None
    validation_records: list[dict[str, Any]] | None = None


class DomainChallenges(WireModel):
    domain: str | None = None
    status: str | None = None
    validation_status: str | None = None
    error: str | None = None
    expires: str | None = None
    request_timestamp: str | None = None
    validated_timestamp: str | None = None
    challenges: Items[Challenge] = []


class DvChallenges(WireModel):
    """``dv-challenges.v2``: per domain, the DNS and HTTP challenges to publish."""

    dv: Items[DomainChallenges] = []


class Csr(WireModel):
    key_algorithm: str | None = None
    csr: str


class Csrs(WireModel):
    """``csr.v2``: one CSR per key algorithm (two when dual-stacked)."""

    csrs: Items[Csr] = []


class CertificateAndTrustChain(WireModel):
    """One item of ``certificate-and-trust-chain.v2``: a signed leaf and its intermediates."""

    key_algorithm: str
    certificate: str | None
    trust_chain: str | None = None


class Warnings(WireModel):
    """``warnings.v1``: one string, one warning per line."""

    warnings: str | None = None

    @property
    def lines(self) -> list[str]:
        return [line for line in (self.warnings or "").splitlines() if line.strip()]


class ValidationMessage(WireModel):
    message: str | None = None
    message_code: str | None = None


class ValidationResult(WireModel):
    errors: list[ValidationMessage] | None = None
    warnings: Items[ValidationMessage] = []


class PendingCertificate(WireModel):
    certificate_type: str | None = None
    full_certificate: str | None = None
    key_algorithm: str | None = None
    signature_algorithm: str | None = None
    ocsp_stapled: bool | None = None
    ocsp_uris: list[str] | None = None


class PendingState(WireModel):
    pending_certificates: Items[PendingCertificate] = []
    pending_network_configuration: dict[str, Any] | None = None


class ChangeManagementInfo(WireModel):
    """``change-management-info.v6``: what would go to production; ack with its hash."""

    acknowledgement_deadline: str | None = None
    validation_result_hash: str | None = None
    pending_state: PendingState | None = None
    validation_result: ValidationResult | None = None


# --- deployments and history ---------------------------------------------------------------------

class DeployedCertificate(WireModel):
    certificate: str | None = None
    trust_chain: str | None = None
    expiry: str | None = None
    key_algorithm: str | None = None
    signature_algorithm: str | None = None


class Deployment(WireModel):
    """``deployment.v8``: what one network serves."""

    ocsp_stapled: bool | None = None
    ocsp_uris: list[str] | None = None
    network_configuration: dict[str, Any] | None = None
    primary_certificate: DeployedCertificate | None = None
    multi_stacked_certificates: Items[DeployedCertificate] = []

    @property
    def certificates(self) -> list[DeployedCertificate]:
        """Primary first, then the multi-stacked ones."""
        primary = [self.primary_certificate] if self.primary_certificate else []
        return primary + list(self.multi_stacked_certificates)


class Deployments(WireModel):
    """``deployments.v8``: both networks."""

    production: Deployment | None = None
    staging: Deployment | None = None


class HistoryCertificate(WireModel):
    certificate: str | None = None
    csr: str | None = None
    trust_chain: str | None = None
    key_algorithm: str | None = None
    expiry: str | None = None


class ChangeHistoryEntry(WireModel):
    action: str | None = None
    action_description: str | None = None
    status: str | None = None
    created_by: str | None = None
    created_on: str | None = None
    last_updated: str | None = None
    ra: str | None = None
    primary_certificate: HistoryCertificate | None = None
    multi_stacked_certificates: Items[HistoryCertificate] = []


class ChangeHistory(WireModel):
    """``change-history.v5``."""

    changes: Items[ChangeHistoryEntry] = []


class CertificateHistoryEntry(WireModel):
    type: str | None = None
    ra: str | None = None
    slots: list[int] | None = None
    deployment_status: str | None = None
    staging_status: str | None = None
    geography: str | None = None
    primary_certificate: HistoryCertificate | None = None
    multi_stacked_certificates: Items[HistoryCertificate] = []


class CertificateHistory(WireModel):
    """``certificate-history.v2``."""

    certificates: Items[CertificateHistoryEntry] = []


class DomainHistory(WireModel):
    domain: str | None = None
    domain_history: Items[dict[str, Any]] = []


class DvHistory(WireModel):
    """``dv-history.v1``."""

    results: Items[DomainHistory] = []
