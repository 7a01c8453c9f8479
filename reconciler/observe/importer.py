"""Adopt enrollments that already exist: one spec file each, bound in state, so the next plan is empty.

Names come from the common name (``*.example.com`` -> ``wildcard.example.com``); a name already
taken by a spec, a state entry, a file in the output directory or an earlier import of the same
run gets ``-<enrollment id>`` (then ``-2``, ``-3``...). No file is ever overwritten.

Never two specs for one enrollment: an enrollment bound in state (under any name) is skipped, so
is one whose CN a spec not yet bound already describes (the next plan adopts it there) and one a
half-finished create in state may own. Enrollments sharing a CN get
``allow_duplicate_common_name``; when an existing spec shares it without that flag the enrollment
is skipped with what to change, because the repository would no longer validate.

With ``factor_defaults`` the values every imported enrollment shares move into reconcile.yaml
``defaults:`` (see ``factor``). Before anything is written, every new spec and the whole specs
directory are loaded as they will be: each imported spec must load to exactly what CPS holds and
every existing spec must load unchanged; otherwise nothing is written.

``write_specs`` is the import from CPS; ``write_new`` is the writing half it shares with the
import from Terraform (``tfimport``), which names and fills the specs itself.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from reconciler.config import CONFIG_FILE, Config, load_config
from reconciler.cps.client import CpsClient
from reconciler.cps.mapping import cps_view, wire_to_spec
from reconciler.cps.models import Enrollment
from reconciler.errors import ReconcileError
from reconciler.observe.factor import CPS_FIELDS, Factoring, dotted, spec_body
from reconciler.observe.factor_plan import choose, with_factoring
from reconciler.spec.loader import AnySpec, LoadedSpec, load_specs
from reconciler.state.model import State, StateEntry


@dataclass(frozen=True)
class Imported:
    """One adopted enrollment: its new spec name and file (and what state records with it)."""

    name: str
    enrollment_id: int
    common_name: str
    file: Path
    contract_id: str
    certificate_fingerprints: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NewSpec:
    """A spec to write for an enrollment. ``header``: the comment that opens its file.
    ``expect``: tool-only field values the file must load as (with reconcile.yaml defaults merged),
    checked with the CPS values before anything is written."""

    spec: AnySpec
    enrollment_id: int
    common_name: str
    header: str
    expect: Mapping[str, Any] = field(default_factory=dict)
    certificate_fingerprints: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """An enrollment not imported, and why."""

    enrollment_id: int
    common_name: str
    reason: str


@dataclass
class ImportResult:
    """What an import wrote; ``config`` is reconcile.yaml as it is now (re-read if changed)."""

    imported: list[Imported]
    skipped: list[Skipped]
    config: Config
    notes: list[str] = field(default_factory=list)
    factored: list[str] = field(default_factory=list)


def name_for(common_name: str, enrollment_id: int, taken: set[str]) -> str:
    """A valid spec name from the CN, made unique against ``taken`` with the enrollment id."""
    base = common_name.lower().replace("*.", "wildcard.")
    base = re.sub(r"[^a-z0-9._-]+", "-", base).strip("-._")[:100] or "enrollment"
    candidates = [base, f"{base}-{enrollment_id}", *(f"{base}-{enrollment_id}-{n}" for n in range(2, 1000))]
    return next(c for c in candidates if c not in taken)


def spec_document(spec: AnySpec) -> dict[str, Any]:
    """The YAML document for ``spec``: every CPS value, tool-only fields only when set."""
    full = spec.model_dump(mode="json", exclude_none=True)
    given = spec.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    full = {k: v for k, v in full.items() if k in CPS_FIELDS or k in given}
    order = ["name", "type", "contract_id", "common_name", "sans"]
    return {**{k: full[k] for k in order if k in full}, **{k: v for k, v in full.items() if k not in order}}


def _cn(enrollment: Enrollment) -> str:
    csr = enrollment.to_wire().get("csr") or {}
    return str(csr.get("cn") or f"enrollment-{enrollment.enrollment_id}").lower()


async def fetch(client: CpsClient, contract_id: str, ids: list[int] | None) -> list[Enrollment]:
    """The enrollments to import: the listed ids (each once), or every enrollment of the contract."""
    if ids is None:
        return await client.list_enrollments(contract_id)
    return [await client.get_enrollment(eid) for eid in dict.fromkeys(ids)]


@dataclass
class Repository:
    """What the repository already holds that an import must not collide with."""

    specs: list[LoadedSpec]
    state: State
    taken: set[str]

    @classmethod
    def read(cls, config: Config, state: State, out_dir: Path) -> Repository:
        specs = load_specs(config).specs if config.specs_dir.is_dir() else []
        taken = set(state.entries) | {s.spec.name for s in specs}
        if out_dir.is_dir():
            taken |= {p.stem.lower() for p in out_dir.iterdir() if p.suffix in (".yaml", ".yml")}
        return cls(specs, state, taken)

    def conflict(self, eid: int, cn: str, contract_id: str) -> tuple[str | None, bool]:
        """(why to skip, or None; whether allow_duplicate_common_name is needed)."""
        for name, entry in self.state.entries.items():
            if entry.enrollment_id == eid:
                return f"already managed as {name}", False
            if entry.enrollment_id is None and entry.common_name == cn and entry.contract_id == contract_id:
                return (f"{name} in state has an interrupted create of {cn}: run `reconcile apply` to finish it "
                        "(it looks the enrollment up by CN)"), False
        same = [s for s in self.specs if s.spec.common_name == cn and s.spec.contract_id == contract_id]
        bound = {n for n, e in self.state.entries.items() if e.enrollment_id is not None}
        for loaded in same:
            if loaded.spec.name not in bound:
                return (f"spec {loaded.spec.name} ({loaded.file}:{loaded.line}) already describes {cn} and is not "
                        "bound yet: `reconcile plan` adopts the enrollment into it"), False
        for loaded in same:
            if not loaded.spec.allow_duplicate_common_name:
                return (f"{cn} is also the CN of spec {loaded.spec.name} (enrollment "
                        f"{self.state.entries[loaded.spec.name].enrollment_id}); to keep both, set "
                        f"allow_duplicate_common_name: true in {loaded.file} and import again"), False
        duplicate = bool(same) or any(e.common_name == cn and e.contract_id == contract_id
                                      for e in self.state.entries.values())
        return None, duplicate


def write_specs(enrollments: list[Enrollment], state: State, config: Config, contract_id: str,
                out_dir: Path, *, factor_defaults: bool = False) -> ImportResult:
    """Write one spec file per enrollment that may be imported (and reconcile.yaml when factoring)."""
    repo = Repository.read(config, state, out_dir)
    skipped: list[Skipped] = []
    chosen: list[tuple[Enrollment, str, bool]] = []
    for enrollment in sorted({e.enrollment_id: e for e in enrollments}.values(), key=lambda e: e.enrollment_id):
        cn = _cn(enrollment)
        why, duplicate = repo.conflict(enrollment.enrollment_id, cn, contract_id)
        if why is None:
            chosen.append((enrollment, cn, duplicate))
        else:
            skipped.append(Skipped(enrollment.enrollment_id, cn, why))
    counts = Counter(cn for _, cn, _ in chosen)
    new: list[NewSpec] = []
    for enrollment, cn, duplicate in chosen:
        name = name_for(cn, enrollment.enrollment_id, repo.taken)
        repo.taken.add(name)
        # CPS allowed these duplicates; the specs must say so or validation refuses them.
        extra = {"allow_duplicate_common_name": True} if duplicate or counts[cn] > 1 else {}
        spec = wire_to_spec(enrollment, name=name, contract_id=contract_id, extra=extra)
        new.append(NewSpec(spec, enrollment.enrollment_id, cn, f"# imported from CPS enrollment {enrollment.enrollment_id}\n"))
    result = ImportResult([], skipped, config)
    write_new(new, repo, config, out_dir, result, factor_defaults=factor_defaults)
    return result


def write_new(new: list[NewSpec], repo: Repository, config: Config, out_dir: Path, result: ImportResult, *,
              factor_defaults: bool = False) -> None:
    """Write ``new`` (and reconcile.yaml when factoring) once all of it loads as it must; add to ``result``."""
    docs = [(item.spec.type, spec_document(item.spec)) for item in new]
    factoring, new_text = Factoring(), None
    if factor_defaults and len(new) < 2:
        result.notes.append("--factor-defaults: fewer than two enrollments to import, so nothing is shared; "
                            "values reconcile.yaml defaults already hold are still left out of the spec")
    elif factor_defaults:
        factoring, new_text = choose(docs, config, repo.specs, result.notes)
    new_config = with_factoring(config, factoring) if factoring else config
    bodies = {item.spec.name: spec_body(doc, kind, new_config.defaults, new_config.default_contract,
                                        factor=factor_defaults) for item, (kind, doc) in zip(new, docs, strict=True)}
    staged = _verify(config, new_text, {item.spec.name: item for item in new}, bodies, repo.specs)
    if staged is not None:  # reconcile.yaml first: a crash before the specs leaves a valid repository
        target = config.file or config.root / CONFIG_FILE
        os.replace(staged, target)
        result.config = load_config(target)
        result.factored = [dotted(p) for p in factoring.defaults] + (
            ["default_contract"] if factoring.default_contract else [])
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in new:
        spec = item.spec
        path = out_dir / f"{spec.name}.yaml"
        header = item.header
        if factor_defaults:
            header += "# values shared with other enrollments come from reconcile.yaml defaults\n"
        with path.open("x", encoding="utf-8") as handle:  # never overwrite
            handle.write(header + yaml.safe_dump(bodies[spec.name], sort_keys=False, allow_unicode=True))
        result.imported.append(Imported(name=spec.name, enrollment_id=item.enrollment_id, common_name=item.common_name,
                                        file=path, contract_id=spec.contract_id or "",
                                        certificate_fingerprints=dict(item.certificate_fingerprints)))


class ImportRefused(ReconcileError):
    """Importing would leave specs that do not load as CPS holds them; nothing was written."""


def _loads_as(loaded: AnySpec, item: NewSpec) -> bool:
    return cps_view(loaded) == cps_view(item.spec) and all(
        _plain(getattr(loaded, key)) == value for key, value in item.expect.items())


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _verify(config: Config, new_text: str | None, specs: dict[str, NewSpec], bodies: dict[str, dict[str, Any]],
            existing: list[LoadedSpec]) -> Path | None:
    """Load the new specs and the specs directory exactly as they will be, before writing any of them.

    Returns the checked new reconcile.yaml, staged beside the real one (None when unchanged).
    """
    staged = None
    trial = config
    if new_text is not None:
        staged = config.root / f".{CONFIG_FILE}.import-tmp"
        staged.write_text(new_text, encoding="utf-8")
    try:
        if staged is not None:
            trial = load_config(staged)
        with tempfile.TemporaryDirectory(dir=config.root, prefix=".reconcile-import-") as staging:
            files = []
            for name, body in bodies.items():
                path = Path(staging) / f"{name}.yaml"
                path.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")
                files.append(path)
            paths = ([config.specs_dir] if config.specs_dir.is_dir() else []) + files
            loaded = {s.spec.name: s for s in load_specs(trial, paths).specs} if paths else {}
        wrong = [name for name, item in specs.items() if not _loads_as(loaded[name].spec, item)]
        wrong += [s.spec.name for s in existing if loaded[s.spec.name].spec_hash != s.spec_hash]
        if wrong:
            raise ImportRefused(f"import would change what these specs load as: {', '.join(sorted(wrong))}; "
                                "nothing was written (please report this)")
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    return staged


def bind(state: State, config: Config, imported: list[Imported]) -> State:
    """State with each imported spec bound to its enrollment, hashed as loaded (defaults merged)."""
    if not imported:
        return state
    uploaded = {i.name: frozenset(i.certificate_fingerprints.values()) for i in imported}
    loaded = {s.name: s for s in load_specs(config, [i.file for i in imported], uploaded=uploaded).specs}
    for item in imported:
        state = state.with_entry(item.name, StateEntry(
            enrollment_id=item.enrollment_id, contract_id=item.contract_id, common_name=item.common_name,
            spec_hash=loaded[item.name].spec_hash, prevent_destroy=loaded[item.name].spec.prevent_destroy,
            certificate_fingerprints=dict(item.certificate_fingerprints)))
    return state
