"""Adopt enrollments that already exist: one spec file each, bound in state, so the next plan is empty.

Names come from the common name (``*.example.com`` -> ``wildcard.example.com``); a name already
taken by a spec, a state entry or an earlier import of the same run gets ``-<enrollment id>``.
Enrollments already bound in state are skipped, never imported twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.config import Config
from reconciler.cps.client import CpsClient
from reconciler.cps.mapping import wire_to_spec
from reconciler.cps.models import Enrollment
from reconciler.spec.loader import AnySpec, load_specs
from reconciler.state.model import State, StateEntry

# Fields CPS stores (the comparable view); every other field is tool-only and is written only
# when the import set it, so the team's reconcile.yaml defaults (publisher, hooks, signer,
# auto-approved warnings...) still apply to imported specs.
_CPS_FIELDS = frozenset({
    "name", "type", "contract_id", "common_name", "sans", "secure_network", "sni_only", "geography",
    "certificate_chain_type", "signature_algorithm", "change_management", "admin_contact", "tech_contact",
    "organization", "csr", "network_configuration", "exclude_sans", "dual_stack",
})


@dataclass(frozen=True)
class Imported:
    """One adopted enrollment: its new spec name and file."""

    name: str
    enrollment_id: int
    common_name: str
    file: Path


def name_for(common_name: str, enrollment_id: int, taken: set[str]) -> str:
    """A valid spec name from the CN, made unique against ``taken`` with the enrollment id."""
    base = common_name.lower().replace("*.", "wildcard.")
    base = re.sub(r"[^a-z0-9._-]+", "-", base).strip("-._") or "enrollment"
    name = base[:110] if base not in taken else f"{base[:110]}-{enrollment_id}"
    return name


def spec_document(spec: AnySpec) -> dict[str, Any]:
    """The YAML document for ``spec``: every CPS value, tool-only fields only when set."""
    full = spec.model_dump(mode="json", exclude_none=True)
    given = spec.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    full = {k: v for k, v in full.items() if k in _CPS_FIELDS or k in given}
    order = ["name", "type", "contract_id", "common_name", "sans"]
    return {**{k: full[k] for k in order if k in full}, **{k: v for k, v in full.items() if k not in order}}


def _cn(enrollment: Enrollment) -> str:
    csr = enrollment.to_wire().get("csr") or {}
    return str(csr.get("cn") or f"enrollment-{enrollment.enrollment_id}").lower()


async def fetch(client: CpsClient, contract_id: str, ids: list[int] | None) -> list[Enrollment]:
    """The enrollments to import: the listed ids, or every enrollment of the contract."""
    if ids is None:
        return await client.list_enrollments(contract_id)
    return [await client.get_enrollment(eid) for eid in ids]


def write_specs(enrollments: list[Enrollment], state: State, config: Config, contract_id: str,
                out_dir: Path) -> tuple[list[Imported], list[int]]:
    """Write one spec file per enrollment not yet bound; (imported, skipped enrollment ids)."""
    bound = {e.enrollment_id for e in state.entries.values() if e.enrollment_id is not None}
    taken = set(state.entries)
    if config.specs_dir.is_dir():
        taken |= {s.name for s in load_specs(config).specs}
    out_dir.mkdir(parents=True, exist_ok=True)
    imported: list[Imported] = []
    skipped: list[int] = []
    cns = [_cn(e) for e in enrollments]
    for enrollment in sorted(enrollments, key=lambda e: e.enrollment_id):
        eid = enrollment.enrollment_id
        if eid in bound:
            skipped.append(eid)
            continue
        cn = _cn(enrollment)
        name = name_for(cn, eid, taken)
        taken.add(name)
        # CPS allowed these duplicates; the specs must say so or validation refuses them.
        extra = {"allow_duplicate_common_name": True} if cns.count(cn) > 1 else {}
        spec = wire_to_spec(enrollment, name=name, contract_id=contract_id, extra=extra)
        path = out_dir / f"{name}.yaml"
        path.write_text(f"# imported from CPS enrollment {eid}\n"
                        + yaml.safe_dump(spec_document(spec), sort_keys=False), encoding="utf-8")
        imported.append(Imported(name=name, enrollment_id=eid, common_name=cn, file=path))
    return imported, skipped


def bind(state: State, config: Config, imported: list[Imported], contract_id: str) -> State:
    """State with each imported spec bound to its enrollment, hashed as loaded (defaults merged)."""
    if not imported:
        return state
    loaded = {s.name: s for s in load_specs(config, [i.file for i in imported]).specs}
    for item in imported:
        state = state.with_entry(item.name, StateEntry(
            enrollment_id=item.enrollment_id, contract_id=contract_id, common_name=item.common_name,
            spec_hash=loaded[item.name].spec_hash, prevent_destroy=loaded[item.name].spec.prevent_destroy))
    return state
