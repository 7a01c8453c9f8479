"""Rules a spec must pass before anything is sent to CPS, beyond what the models check.

Per spec (``check_spec``): SAN limit and duplicates, wildcard rules, DNS-name settings vs SNI,
TLS/FIPS combinations, publisher settings, third-party key types and certificate files.
Across specs (``check_repo``): unique ``name``, unique CN per contract unless every holder sets
``allow_duplicate_common_name``.

Wildcards: a name may start with ``*.``. Third-party enrollments accept wildcards freely (your CA
decides). For DV, Let's Encrypt validates a wildcard only through DNS-01, so a DV spec with a
wildcard needs ``validation.method: dns-01``; CPS documentation does not say more about DV
wildcards, so this is the only DV restriction enforced here.

Findings carry a field path (``("sans", 3)``); the loader turns paths into file:line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.spec.certfiles import check_certificate_files
from reconciler.spec.checks import is_wildcard
from reconciler.spec.findings import Finding
from reconciler.spec.models import DvEnrollmentSpec, ThirdPartyEnrollmentSpec

__all__ = ["MAX_SANS", "Finding", "RepoEntry", "check_repo", "check_spec"]

MAX_SANS = 100  # enrollment maxAllowedSanNames; the CN counts as one of them
_ALL_TLS = {"TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3"}

AnySpec = DvEnrollmentSpec | ThirdPartyEnrollmentSpec


def _name_path(spec: AnySpec, index: int) -> tuple[str | int, ...]:
    # The CN, appended to sans by the model when missing, is reported where the user wrote it.
    if index == len(spec.sans) - 1 and spec.sans[index] == spec.common_name and spec.common_name not in spec.sans[:-1]:
        return ("common_name",)
    return ("sans", index)


def _names(spec: AnySpec) -> list[Finding]:
    found: list[Finding] = []
    if len(spec.sans) > MAX_SANS:
        found.append(Finding(("sans",), f"{len(spec.sans)} names (common name included); CPS allows at most {MAX_SANS}"))
    first: dict[str, int] = {}
    for i, san in enumerate(spec.sans):
        if san in first:
            found.append(Finding(("sans", i), f"{san!r} is listed twice (first as sans[{first[san]}])"))
        else:
            first[san] = i
    if isinstance(spec, DvEnrollmentSpec) and spec.validation.method != "dns-01":
        for i, san in enumerate(spec.sans):
            if is_wildcard(san):
                found.append(Finding(_name_path(spec, i), f"wildcard {san!r} needs validation.method: dns-01 "
                                     "(Let's Encrypt validates wildcards only over DNS)"))
    return found


def _network(spec: AnySpec) -> list[Finding]:
    nc = spec.network_configuration
    found: list[Finding] = []
    where = ("network_configuration",)
    if not spec.sni_only:
        if nc.dns_names:
            found.append(Finding((*where, "dns_names"), "DNS name settings apply only to sni_only: true enrollments"))
        if not nc.clone_dns_names:
            found.append(Finding((*where, "clone_dns_names"),
                                 "DNS name settings apply only to sni_only: true enrollments"))
    elif nc.dns_names and nc.clone_dns_names:
        found.append(Finding((*where, "dns_names"), "dns_names is used only with clone_dns_names: false"))
    elif not nc.clone_dns_names and not nc.dns_names:
        found.append(Finding((*where, "dns_names"), "clone_dns_names is false, so list the names to serve here"))
    names = set(spec.sans)
    for i, name in enumerate(nc.dns_names):
        if name not in names:
            found.append(Finding((*where, "dns_names", i), f"{name!r} is not one of the certificate's names"))
    disallowed = set(nc.disallowed_tls_versions)
    if disallowed >= _ALL_TLS:
        found.append(Finding((*where, "disallowed_tls_versions"), "every TLS version is disallowed"))
    elif nc.fips_mode and {"TLSv1_2", "TLSv1_3"} <= disallowed:
        found.append(Finding((*where, "fips_mode"), "FIPS mode needs TLSv1_2 or TLSv1_3 allowed"))
    return found


def _validation(spec: DvEnrollmentSpec) -> list[Finding]:
    v = spec.validation
    found: list[Finding] = []
    needed = {"hook": v.hook, "rfc2136": v.rfc2136, "edgedns": v.edgedns}
    if v.publisher in needed and needed[v.publisher] is None:
        required = {"hook": "validation.hook.publish", "rfc2136": "validation.rfc2136 (server, zone)",
                    "edgedns": "validation.edgedns.zone"}[v.publisher]
        found.append(Finding(("validation", "publisher"), f"publisher {v.publisher} needs {required}"))
    for other, settings in needed.items():
        if settings is not None and other != v.publisher:
            found.append(Finding(("validation", other), f"ignored: publisher is {v.publisher}", "warning"))
    if v.method == "http-01" and v.publisher in ("rfc2136", "edgedns"):
        found.append(Finding(("validation", "method"),
                             f"publisher {v.publisher} publishes DNS records; http-01 needs publisher hook or manual"))
    if v.rfc2136 is not None and (v.rfc2136.tsig_key_name is None) != (v.rfc2136.tsig_secret_env is None):
        found.append(Finding(("validation", "rfc2136"), "set both tsig_key_name and tsig_secret_env, or neither"))
    return found


def _third_party(spec: ThirdPartyEnrollmentSpec, root: Path, uploaded: Collection[str],
                 state_dir: Path | None) -> list[Finding]:
    found: list[Finding] = []
    if spec.csr.preferred_trust_chain is not None:
        found.append(Finding(("csr", "preferred_trust_chain"), "only DV enrollments choose a trust chain"))
    if spec.certificates.rsa is None:
        found.append(Finding(("certificates", "rsa"), "an RSA certificate is always needed"))
    if spec.dual_stack and spec.certificates.ecdsa is None:
        found.append(Finding(("certificates", "ecdsa"),
                             "dual_stack is true (the default), so an ECDSA certificate is needed too"))
    if not spec.dual_stack and spec.certificates.ecdsa is not None:
        found.append(Finding(("certificates", "ecdsa"), "set dual_stack: true to use an ECDSA certificate"))
    found.extend(check_certificate_files(spec, root, uploaded, state_dir))
    return found


def check_spec(spec: AnySpec, root: Path, uploaded: Collection[str] = (), state_dir: Path | None = None) -> list[Finding]:
    """Every per-spec rule; ``root`` is the repository root for certificate paths, ``uploaded``
    the fingerprints of certificates state records as uploaded for this spec, ``state_dir`` the
    state file's directory (the CSRs CPS issued are under its ``csr/``)."""
    found = _names(spec) + _network(spec)
    if spec.contract_id is None:
        found.append(Finding(("contract_id",), "required: set it here, or default_contract in reconcile.yaml"))
    if spec.acknowledge_change_management and not spec.change_management:
        found.append(Finding(("acknowledge_change_management",), "has no effect without change_management: true",
                             "warning"))
    if isinstance(spec, DvEnrollmentSpec):
        found.extend(_validation(spec))
    else:
        found.extend(_third_party(spec, root, uploaded, state_dir))
    return found


@dataclass(frozen=True)
class RepoEntry:
    """A spec with where it was written, for rules that compare specs."""

    spec: AnySpec
    where: str  # "file:line" of the spec, quoted in messages about the other spec
    fields: Mapping[str, str] = field(default_factory=dict)
    """"file:line" of single fields (``name``, ``common_name``) when known, for those messages."""

    def at(self, name: str) -> str:
        """The spec's name and where ``name`` is written: ``www (specs/www.yaml:4)``."""
        return f"{self.spec.name} ({self.fields.get(name, self.where)})"


def check_repo(entries: Sequence[RepoEntry]) -> list[tuple[int, Finding]]:
    """Cross-spec rules; returns (index into entries, finding)."""
    found: list[tuple[int, Finding]] = []
    by_name: dict[str, int] = {}
    for i, entry in enumerate(entries):
        if entry.spec.name in by_name:
            first = entries[by_name[entry.spec.name]]
            found.append((i, Finding(("name",), f"{entry.spec.name!r} is already used by "
                                     f"{first.fields.get('name', first.where)}")))
        else:
            by_name[entry.spec.name] = i
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, entry in enumerate(entries):
        if entry.spec.contract_id is not None:
            groups[(entry.spec.contract_id, entry.spec.common_name)].append(i)
    for (contract, cn), members in groups.items():
        if len(members) < 2 or all(entries[i].spec.allow_duplicate_common_name for i in members):
            continue
        for i in members:
            if not entries[i].spec.allow_duplicate_common_name:
                others = ", ".join(entries[j].at("common_name") for j in members if j != i)
                found.append((i, Finding(("common_name",), f"{cn!r} is also the common name of {others} on contract "
                                         f"{contract}; set allow_duplicate_common_name: true on each to allow it")))
    return found
