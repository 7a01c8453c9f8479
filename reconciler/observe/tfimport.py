"""Migrate ``akamai_cps_*`` resources from Terraform state: specs, PEMs and state, first plan empty.

In order; every refusal comes before anything is written, and everything up to step 3 before any
write at all (CPS is only read):

====  ======================================================================================
step  what happens
====  ======================================================================================
1     ``tfstate.read_tfstate`` + ``tfcps.collect``: refuse another format, a plan, sensitive
      values, doubled ids; list unknown ``akamai_cps_*`` types and orphaned validation /
      upload resources (not migrated, not fatal)
2     ``read_cps``: one list per contract the state names (not one read per enrollment), then
      one read for each id missing from its contract's list, to say whether CPS does not know
      it or holds it under another contract (both refused), and one production deployment
      read per enrollment with uploaded certificates
3     ``migrate``, per enrollment: skipped when state already binds it (any name) or the
      repository would otherwise hold it twice (``importer.Repository.conflict``, as for
      ``import``); named from its address (``tfspec.spec_name``), unique within the run with
      ``-<enrollment id>``; a name a spec, state entry or file already has is refused unless
      ``force`` (which takes ``NAME-<enrollment id>``); the spec is CPS's enrollment with the
      Terraform values laid over it (``tfspec.overlay``) and the tool settings Terraform had
      (``tfspec.tool_fields``) written where they differ from what the spec would inherit;
      a type or value the spec cannot hold is refused with the address and field
4     uploaded PEMs are parsed and checked against the spec (``spec.certfiles``) in a scratch
      directory; a different file already at a certificate path is refused
5     ``importer.write_new`` writes the specs (and reconcile.yaml with ``factor_defaults``)
      after loading them as they will be; then the PEMs; the caller binds state
      (``importer.bind``) with the certificate fingerprints, so the first apply neither waits
      for nor re-sends a certificate
====  ======================================================================================

The report says, per enrollment, whether CPS agrees with the Terraform state (spec values are
Terraform's, so a difference shows in the first plan as drift to put back, never silently
adopted), what is pending, and lists the ``terraform state rm`` commands: one per address of
every enrollment that state now binds. Nothing printed holds an attribute value.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from pydantic import ValidationError

from reconciler.config import Config
from reconciler.cps.mapping import cps_view, field_class, observed_view, wire_to_spec
from reconciler.cps.models import Deployment, Enrollment
from reconciler.errors import NotFound, SpecError
from reconciler.observe.factor import CPS_FIELDS, for_type, merged
from reconciler.observe.importer import ImportRefused, ImportResult, NewSpec, Repository, Skipped, write_new
from reconciler.observe.tfcps import TfCps, TfEnrollment
from reconciler.observe.tfspec import contract, overlay, pems, spec_name, tool_fields
from reconciler.plan.diff import diff_views
from reconciler.spec.certfiles import check_certificate_files, resolve_inside
from reconciler.spec.loader import AnySpec, format_path
from reconciler.spec.models import SPEC_TYPES, ThirdPartyEnrollmentSpec
from reconciler.state.model import State
from reconciler.x509names import fingerprint

__all__ = ["CpsSide", "Report", "TfImportResult", "migrate", "read_cps", "state_rm_commands"]


class TfCpsClient(Protocol):
    """The part of :class:`reconciler.cps.client.CpsClient` the migration reads with."""

    async def list_enrollments(self, contract_id: str) -> list[Enrollment]: ...

    async def get_enrollment(self, eid: int) -> Enrollment: ...

    async def get_production_deployment(self, eid: int) -> Deployment | None: ...


@dataclass(frozen=True)
class CpsSide:
    """What CPS holds for one enrollment the Terraform state names."""

    contract_id: str
    enrollment: Enrollment
    production: frozenset[str] = frozenset()  # fingerprints of the certificates production serves


@dataclass(frozen=True)
class Report:
    """Per migrated enrollment: where it came from and whether CPS agrees with Terraform."""

    address: str
    name: str
    enrollment_id: int
    differs: tuple[str, ...] = ()  # spec paths where CPS holds something else than the Terraform state
    notes: tuple[str, ...] = ()


@dataclass
class TfImportResult:
    """The import's result plus what only a migration has to say."""

    result: ImportResult
    reports: list[Report] = field(default_factory=list)
    state_rm: list[str] = field(default_factory=list)  # addresses Terraform should forget
    unknown: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


def _contract(tf: TfEnrollment) -> str:
    found = contract(tf.resource.attributes.get("contract_id"))
    if found is None:
        raise ImportRefused(f"{tf.resource.address}: no contract_id")
    return found


async def read_cps(client: TfCpsClient, tf: TfCps) -> dict[int, CpsSide]:
    """Every enrollment of ``tf`` as CPS holds it; refuses ids CPS does not know or files elsewhere."""
    by_contract: dict[str, list[TfEnrollment]] = {}
    for item in tf.enrollments:
        by_contract.setdefault(_contract(item), []).append(item)
    contracts = sorted(by_contract)
    lists = await asyncio.gather(*(client.list_enrollments(c) for c in contracts))
    listed = {e.enrollment_id: (c, e) for c, es in zip(contracts, lists, strict=True) for e in es}
    missing = [(c, item) for c in contracts for item in by_contract[c] if item.enrollment_id not in listed]
    problems: list[str] = []

    async def look(contract_id: str, item: TfEnrollment) -> None:
        try:
            await client.get_enrollment(item.enrollment_id)
        except NotFound:
            problems.append(f"{item.resource.address}: CPS has no enrollment {item.enrollment_id} (deleted outside "
                            "Terraform, or these credentials reach another account: check --section and "
                            "--account-switch-key)")
            return
        problems.append(f"{item.resource.address}: enrollment {item.enrollment_id} is not in contract "
                        f"{contract_id}, which the Terraform state names")

    await asyncio.gather(*(look(c, item) for c, item in missing))
    for item in tf.enrollments:
        found = listed.get(item.enrollment_id)
        if found is not None and found[1].validation_type != item.kind:
            problems.append(f"{item.resource.address}: enrollment {item.enrollment_id} is a "
                            f"{found[1].validation_type} enrollment in CPS, not {item.kind}")
    if problems:
        raise ImportRefused("cannot migrate; nothing was written:\n" + "\n".join(f"  {p}" for p in sorted(problems)))
    uploads = [item.enrollment_id for item in tf.enrollments if pems(item)]
    deployments = await asyncio.gather(*(client.get_production_deployment(eid) for eid in uploads))
    served = {eid: _served(d) for eid, d in zip(uploads, deployments, strict=True)}
    return {item.enrollment_id: CpsSide(listed[item.enrollment_id][0], listed[item.enrollment_id][1],
                                        served.get(item.enrollment_id, frozenset())) for item in tf.enrollments}


def _served(deployment: Deployment | None) -> frozenset[str]:
    if deployment is None:
        return frozenset()
    return frozenset(fingerprint(x509.load_pem_x509_certificate(c.certificate.encode()))
                     for c in deployment.certificates if c.certificate)


def _inherited(kind: str, key: str, config: Config) -> Any:
    given = for_type(config.defaults, kind)
    if key in given:
        return given[key]
    return SPEC_TYPES[kind].model_fields[key].get_default(call_default_factory=True)


def _spec(tf: TfEnrollment, side: CpsSide, name: str, config: Config, extra: Mapping[str, Any]) -> NewSpec:
    """The spec: CPS's enrollment, Terraform's values over it, Terraform's tool settings."""
    where = tf.resource.address
    tf_values = overlay(tf)
    try:
        # Contacts and organization may be empty in CPS (an orgId enrollment); Terraform's fill them.
        fill = {k: v for k, v in tf_values.items() if k in ("admin_contact", "tech_contact", "organization")}
        base = wire_to_spec(side.enrollment, name=name, contract_id=side.contract_id, extra=fill)
        data = {k: v for k, v in base.model_dump(mode="json").items() if k in CPS_FIELDS}
        # Whole blocks replace CPS's (an argument Terraform left unset stays unset); the network
        # block merges key by key, as older providers do not model every key of it.
        data.update({k: v for k, v in tf_values.items() if k != "network_configuration"})
        data = merged(data, {k: v for k, v in tf_values.items() if k == "network_configuration"})
        data.update(name=name, type=tf.kind, contract_id=side.contract_id)
        tools = {**tool_fields(tf), **extra, **_certificate_paths(tf, name, data)}
        data.update({k: v for k, v in tools.items() if v != _inherited(tf.kind, k, config)})
        spec: AnySpec = SPEC_TYPES[tf.kind].model_validate(data)
    except SpecError as exc:
        raise ImportRefused(f"{where}: the enrollment as CPS holds it cannot be a spec: {exc}") from None
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ImportRefused(f"{where}: {reasons}") from None
    header = f"# migrated from Terraform: {where} (CPS enrollment {tf.enrollment_id})\n"
    return NewSpec(spec, tf.enrollment_id, spec.common_name, header, expect=tools)


def _certificate_paths(tf: TfEnrollment, name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Where the uploaded PEMs go: the default paths, without a chain file where none was uploaded
    (a chain path with no file would read as "waiting for a certificate")."""
    found = pems(tf)
    if not found:
        return {}
    keys = ["rsa", "ecdsa"] if data.get("dual_stack", True) is not False else ["rsa"]
    files: dict[str, Any] = {}
    for key in keys:
        files[key] = {"certificate": f"certs/{name}/{key}.pem", "trust_chain": f"certs/{name}/{key}-chain.pem"}
        if key in found and found[key][1] is None:
            files[key]["trust_chain"] = None
    return {"certificates": files}


def _differs(spec: AnySpec, side: CpsSide) -> tuple[str, ...]:
    live = observed_view(side.enrollment, contract_id=side.contract_id)
    return tuple(c.path for c in diff_views(live, cps_view(spec), field_class))


def _certificates(tf: TfEnrollment, spec: AnySpec, root: Path) -> tuple[dict[str, str], dict[Path, str]]:
    """(key type -> fingerprint, path -> PEM text to write) for the uploaded certificates."""
    found = pems(tf)
    if not found or not isinstance(spec, ThirdPartyEnrollmentSpec):
        return {}, {}
    where = tf.upload.address if tf.upload else tf.resource.address
    prints: dict[str, str] = {}
    files: dict[str, str] = {}
    for key, (cert, chain) in found.items():
        target = getattr(spec.certificates, key)
        if target is None:
            raise ImportRefused(f"{where}: has a {key.upper()} certificate but the spec has no place for one "
                                "(dual_stack is false in CPS)")
        try:
            prints[key] = fingerprint(x509.load_pem_x509_certificate(cert.encode()))
        except ValueError:
            raise ImportRefused(f"{where}: certificate_{key}_pem is not a PEM certificate") from None
        files[target.certificate] = cert
        if chain is not None and target.trust_chain is not None:
            files[target.trust_chain] = chain
    with tempfile.TemporaryDirectory(prefix=".reconcile-tf-") as scratch:
        for rel, text in files.items():
            path = Path(scratch) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        errors = [f for f in check_certificate_files(spec, Path(scratch), prints.values()) if f.severity == "error"]
    if errors:
        raise ImportRefused(f"{where}: the uploaded certificates do not check out: "
                            + "; ".join(f"{format_path(f.path)}: {f.message}" for f in errors))
    writes: dict[Path, str] = {}
    for rel, text in files.items():
        try:
            path = resolve_inside(root, rel)
        except ValueError as exc:
            raise ImportRefused(f"{spec.name}: certificate path {exc}") from None
        if path.exists() and path.read_text(encoding="utf-8", errors="replace") != text:
            raise ImportRefused(f"{spec.name}: {rel} already exists with other content; move it away to migrate "
                                "(nothing was written)")
        writes[path] = text
    return prints, writes


def _notes(tf: TfEnrollment, side: CpsSide, prints: Mapping[str, str]) -> tuple[str, ...]:
    notes = []
    if side.enrollment.pending_change_ids:
        ids = ", ".join(str(c) for c in side.enrollment.pending_change_ids)
        notes.append(f"change {ids} is pending in CPS: `reconcile plan` shows what it waits for")
    stale = sorted(k.upper() for k, fp in prints.items() if fp not in side.production)
    if stale:
        notes.append(f"the {', '.join(stale)} certificate Terraform uploaded is not what production serves "
                     "(renewed or replaced outside Terraform?): the certificate files hold Terraform's")
    if tf.kind == "third-party" and tf.upload is None:
        notes.append("no akamai_cps_upload_certificate in this state: certificates come from the certificate "
                     "files (reconcile csr, then sign) when CPS asks for them")
    return tuple(notes)


def _cn(side: CpsSide) -> str:
    csr = side.enrollment.csr
    return (csr.cn or "").lower() if csr is not None else ""


def migrate(tf: TfCps, cps: Mapping[int, CpsSide], state: State, config: Config, out_dir: Path, *,
            force: bool = False, factor_defaults: bool = False) -> TfImportResult:
    """Write specs and certificate files for the enrollments of ``tf`` (see the module docstring)."""
    repo = Repository.read(config, state, out_dir)
    done = TfImportResult(ImportResult([], [], config), unknown=list(tf.unknown), orphans=list(tf.orphans))
    bound = {e.enrollment_id: n for n, e in state.entries.items() if e.enrollment_id is not None}
    chosen: list[tuple[TfEnrollment, bool]] = []
    for item in tf.enrollments:
        side = cps[item.enrollment_id]
        cn = _cn(side)
        why, duplicate = repo.conflict(item.enrollment_id, cn, side.contract_id)
        if why is None:
            chosen.append((item, duplicate))
        else:
            done.result.skipped.append(Skipped(item.enrollment_id, cn, f"{item.resource.address}: {why}"))
    wanted = {item.enrollment_id: spec_name(item.resource) for item, _ in chosen}
    counts = Counter(wanted.values())
    collisions = [f"{item.resource.address} -> {wanted[item.enrollment_id]}" for item, _ in chosen
                  if wanted[item.enrollment_id] in repo.taken]
    if collisions and not force:
        raise ImportRefused("these names are already taken by a spec, a state entry or a file in "
                            f"{config.relative(out_dir)}; nothing was written (--force names them NAME-<enrollment id>):"
                            "\n" + "\n".join(f"  {c}" for c in collisions))
    cns = Counter(_cn(cps[item.enrollment_id]) for item, _ in chosen)
    new: list[NewSpec] = []
    writes: dict[Path, str] = {}
    for item, duplicate in chosen:
        side = cps[item.enrollment_id]
        base = wanted[item.enrollment_id]
        name = base if base not in repo.taken and counts[base] == 1 else next(
            c for c in (f"{base}-{item.enrollment_id}", *(f"{base}-{item.enrollment_id}-{n}" for n in range(2, 1000)))
            if c not in repo.taken)
        repo.taken.add(name)
        # CPS allowed these duplicates; the specs must say so or validation refuses them.
        extra = {"allow_duplicate_common_name": True} if duplicate or cns[_cn(side)] > 1 else {}
        spec_item = _spec(item, side, name, config, extra)
        prints, files = _certificates(item, spec_item.spec, config.root)
        writes.update(files)
        new.append(NewSpec(spec_item.spec, spec_item.enrollment_id, spec_item.common_name, spec_item.header,
                           expect=spec_item.expect, certificate_fingerprints=prints))
        done.reports.append(Report(item.resource.address, name, item.enrollment_id,
                                   _differs(spec_item.spec, side), _notes(item, side, prints)))
    write_new(new, repo, config, out_dir, done.result, factor_defaults=factor_defaults)
    for path, text in writes.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    now_bound = {**bound, **{i.enrollment_id: i.name for i in done.result.imported}}
    done.state_rm = [a for item in tf.enrollments if item.enrollment_id in now_bound for a in item.addresses]
    return done


def state_rm_commands(addresses: list[str]) -> list[str]:
    """``terraform state rm 'ADDRESS'``, one per address, always single-quoted for a POSIX shell (a
    ``for_each`` key holds double quotes and brackets)."""
    return ["terraform state rm '" + a.replace("'", "'\"'\"'") + "'" for a in addresses]
