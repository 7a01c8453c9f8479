"""--factor-defaults against a real repository: which shared values reconcile.yaml may take.

A shared value becomes a default only when (1) reconcile.yaml has nothing else there (a
conflicting default stays; the value stays in the specs, where it wins), (2) as a default it
leaves every existing spec loading exactly as before (a default reaches every spec that does not
set the field, not just the imported ones), and (3) it can be added to reconcile.yaml by
inserting lines, keeping the file's comments and order. Values failing any of these stay in the
imported specs, and a note says which and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reconciler.config import CONFIG_FILE, Config
from reconciler.errors import SpecError
from reconciler.observe.factor import Factoring, Leaf, dotted, merged, propose, tree
from reconciler.observe.factor_yaml import add_keys
from reconciler.spec.loader import LoadedSpec, load_specs

_CONTRACT: Leaf = ("default_contract",)


def choose(docs: Sequence[tuple[str, Mapping[str, Any]]], config: Config, existing: list[LoadedSpec],
           notes: list[str]) -> tuple[Factoring, str | None]:
    """The factoring to apply and reconcile.yaml's new text (None: unchanged); notes say what stayed."""
    factoring = propose(docs, config.defaults, config.default_contract)
    if factoring.conflicts:
        notes.append("kept in the specs (reconcile.yaml defaults hold another value): "
                     + ", ".join(dotted(p) for p in factoring.conflicts))
    candidates = {**{("defaults", *p): v for p, v in factoring.defaults.items()},
                  **({_CONTRACT: factoring.default_contract} if factoring.default_contract else {})}
    harmful = _harmful(candidates, config, existing)
    if harmful:
        notes.append("kept in the specs (as defaults they would change existing specs): "
                     + ", ".join(dotted(p[1:] if p[0] == "defaults" else p) for p in sorted(harmful)))
    accepted = {p: v for p, v in candidates.items() if p not in harmful}
    if not accepted:
        return Factoring(), None
    path = config.file or config.root / CONFIG_FILE
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    edit = add_keys(text, tree(accepted))
    if edit.refused:
        notes.append(f"kept in the specs ({edit.reason}; reconcile.yaml was left as it is there — write those "
                     "mappings in block style, one key per line, to let import add to them): "
                     + ", ".join(dotted(p[1:] if p[0] == "defaults" else p) for p in edit.refused))
    accepted = {p: v for p, v in accepted.items() if p not in edit.refused}
    if not accepted:
        return Factoring(), None
    chosen = Factoring(defaults={p[1:]: v for p, v in accepted.items() if p[0] == "defaults"},
                       default_contract=accepted.get(_CONTRACT))
    return chosen, edit.text


def with_factoring(config: Config, factoring: Factoring) -> Config:
    """``config`` as it will be once ``factoring`` is in reconcile.yaml (in memory, for checks)."""
    return Config.model_validate({**config.model_dump(), "defaults": merged(config.defaults, tree(factoring.defaults)),
                                  "default_contract": factoring.default_contract or config.default_contract})


def _harmful(candidates: dict[Leaf, Any], config: Config, existing: list[LoadedSpec]) -> set[Leaf]:
    """Candidates that would change how some existing spec loads: tried all at once, then by key."""
    if not existing or not candidates:
        return set()
    before = {s.spec.name: s.spec_hash for s in existing}

    def harmless(group: list[Leaf]) -> bool:
        trial = with_factoring(config, _as_factoring({p: candidates[p] for p in group}))
        try:
            after = {s.spec.name: s.spec_hash for s in load_specs(trial, [Path(config.specs_dir)]).specs}
        except SpecError:
            return False
        return after == before

    if harmless(list(candidates)):
        return set()
    harmful: set[Leaf] = set()
    groups: dict[Leaf, list[Leaf]] = {}
    for p in candidates:
        groups.setdefault(p[:2], []).append(p)
    for group in groups.values():
        if not harmless(group):
            alone = {p for p in group if not harmless([p])} if len(group) > 1 else set()
            harmful |= alone or set(group)  # together but not alone: keep the whole group out
    return harmful


def _as_factoring(leaves: dict[Leaf, Any]) -> Factoring:
    return Factoring(defaults={p[1:]: v for p, v in leaves.items() if p[0] == "defaults"},
                     default_contract=leaves.get(_CONTRACT))
