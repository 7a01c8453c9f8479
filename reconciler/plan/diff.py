"""Field-level diff of two enrollment views, with deepdiff doing the comparison.

Both sides are normalised again here, defensively, whatever the mapping already did: host name
lists compare as lower-cased sets, lists compare without order, and a key holding ``None`` equals
a missing key. The result names whole fields (a changed SAN list is one change, old list -> new
list), never list indexes, so that a reviewer reads ``sans: [a, b] -> [a, b, c]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from deepdiff import DeepDiff

from reconciler.plan.model import FieldChange, FieldClass

Classifier = Callable[[str], FieldClass]

# Lists of host names: CPS may reorder them and change their case.
HOSTNAME_LISTS = frozenset({"sans", "dns_names"})

_CLASS_RANK: dict[str, int] = {"metadata": 0, "network": 1, "certificate": 2, "immutable": 3}


def normalise(value: Any, key: str | None = None) -> Any:
    """The comparable form of a view: ``None`` values dropped, host lists lower-cased and sorted."""
    if isinstance(value, Mapping):
        return {k: normalise(v, k) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        items = [normalise(v) for v in value]
        if key in HOSTNAME_LISTS and all(isinstance(v, str) for v in items):
            return sorted({v.lower().rstrip(".") for v in items})
        if all(isinstance(v, str | int | float | bool) for v in items):
            return sorted(items, key=lambda v: (type(v).__name__, v))
        return items
    return value


def _field_path(parts: Iterable[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for part in parts:
        if not isinstance(part, str):  # a list index: report the whole list
            break
        out.append(part)
    return tuple(out)


def _get(view: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = view
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def diff_views(old: Mapping[str, Any], new: Mapping[str, Any], classify: Classifier) -> tuple[FieldChange, ...]:
    """Changes from ``old`` (CPS) to ``new`` (spec), one per field, sorted by path."""
    a, b = normalise(old), normalise(new)
    tree = DeepDiff(a, b, ignore_order=True, view="tree", verbose_level=2)
    paths: set[tuple[str, ...]] = set()
    for report in tree.values():
        for level in report:
            path = _field_path(level.path(output_format="list"))
            if path:
                paths.add(path)
    # A parent path absorbs its children (a whole sub-object added or removed).
    kept = sorted(p for p in paths if not any(p[: len(q)] == q and p != q for q in paths))
    changes = []
    for path in kept:
        before, after = _get(a, path), _get(b, path)
        if before == after:
            continue
        dotted = ".".join(path)
        changes.append(FieldChange(path=dotted, old=before, new=after, field_class=classify(dotted)))
    return tuple(changes)


def overall_class(changes: Iterable[FieldChange]) -> FieldClass | None:
    """The weightiest class among ``changes`` (immutable > certificate > network > metadata)."""
    ranked = sorted((c.field_class for c in changes), key=lambda k: _CLASS_RANK[k])
    return ranked[-1] if ranked else None
