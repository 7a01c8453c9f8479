"""Which imported values reconcile.yaml ``defaults:`` supply, and the smallest spec that loads the same.

The loader deep-merges ``defaults`` under every spec: mappings key by key, lists and scalars
replaced, the spec wins, and keys only another enrollment type has skipped. So a value is a
*leaf*: a path through mappings ending at a scalar or a list. A leaf can be left out of a spec
when the defaults hold it with the same value; a leaf the defaults hold but the enrollment has
not (null in CPS) must be written as an explicit ``null``, or the merge would invent it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.spec.models import SPEC_TYPES

Leaf = tuple[str, ...]

# Fields CPS stores (the comparable view). Every other field is tool-only.
CPS_FIELDS = frozenset({
    "name", "type", "contract_id", "common_name", "sans", "secure_network", "sni_only", "geography",
    "certificate_chain_type", "signature_algorithm", "change_management", "admin_contact", "tech_contact",
    "organization", "csr", "network_configuration", "exclude_sans", "dual_stack",
})
# Never factored: they identify one enrollment (contract_id goes to default_contract instead).
_OWN = frozenset({"name", "type", "contract_id", "common_name", "sans"})
FACTORABLE = CPS_FIELDS - _OWN


def leaves(data: Mapping[str, Any], prefix: Leaf = ()) -> dict[Leaf, Any]:
    """Every leaf under ``data``; empty mappings are not leaves (merging one adds nothing)."""
    found: dict[Leaf, Any] = {}
    for key, value in data.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping):
            found.update(leaves(value, path))
        else:
            found[path] = value
    return found


def get(data: Any, path: Leaf) -> tuple[bool, Any]:
    """(found, value) at ``path``."""
    for part in path:
        if not isinstance(data, Mapping) or part not in data:
            return False, None
        data = data[part]
    return True, data


def put(data: dict[str, Any], path: Leaf, value: Any) -> None:
    """Set ``path`` in ``data``, making the mappings on the way."""
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value


def tree(values: Mapping[Leaf, Any]) -> dict[str, Any]:
    """Leaves back into nested mappings."""
    result: dict[str, Any] = {}
    for path, value in values.items():
        put(result, path, value)
    return result


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """The loader's merge (mappings merge, everything else replaced, ``over`` wins), plain dicts."""
    result = dict(base)
    for key, value in over.items():
        old = result.get(key)
        result[key] = merged(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
    return result


def for_type(defaults: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The defaults a spec of type ``kind`` receives (fields only other types have are skipped)."""
    own = set(SPEC_TYPES[kind].model_fields)
    others = set().union(*(set(cls.model_fields) for cls in SPEC_TYPES.values())) - own
    return {k: v for k, v in defaults.items() if k not in others}


def has_field(kind: str, key: str) -> bool:
    return key in SPEC_TYPES[kind].model_fields


def dotted(path: Leaf) -> str:
    return ".".join(path)


@dataclass
class Factoring:
    """What to add to reconcile.yaml: new ``defaults`` leaves and perhaps ``default_contract``."""

    defaults: dict[Leaf, Any] = field(default_factory=dict)
    default_contract: str | None = None
    # Shared leaves left in the specs because reconcile.yaml already says something else there.
    conflicts: list[Leaf] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.defaults) or self.default_contract is not None


def shared(docs: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[Leaf, Any]:
    """Leaves every document whose type has the field holds with one value (at least two of them)."""
    items = list(docs)
    found: dict[Leaf, Any] = {}
    for key in sorted(FACTORABLE):
        relevant = [doc for kind, doc in items if has_field(kind, key)]
        if len(relevant) < 2 or not all(key in doc for doc in relevant):
            continue
        first = leaves({key: relevant[0][key]})
        for path, value in first.items():
            if all(get(doc, path) == (True, value) for doc in relevant[1:]):
                found[path] = value
    return found


def propose(docs: Sequence[tuple[str, Mapping[str, Any]]], defaults: Mapping[str, Any],
            default_contract: str | None) -> Factoring:
    """The shared leaves reconcile.yaml does not hold yet (equal ones are already supplied)."""
    result = Factoring()
    for path, value in shared(docs).items():
        found, current = get(defaults, path)
        if found:
            if current != value:
                result.conflicts.append(path)
            continue
        blocked = any(get(defaults, path[:i])[0] and not isinstance(get(defaults, path[:i])[1], Mapping)
                      for i in range(1, len(path)))
        if blocked:  # a scalar or list in the defaults where a mapping would have to be
            result.conflicts.append(path)
        else:
            result.defaults[path] = value
    contracts = {doc.get("contract_id") for _, doc in docs}
    if len(docs) >= 2 and default_contract is None and "contract_id" not in defaults and len(contracts) == 1:
        result.default_contract = str(contracts.pop())
    return result


def spec_body(doc: Mapping[str, Any], kind: str, defaults: Mapping[str, Any], default_contract: str | None,
              *, factor: bool) -> dict[str, Any]:
    """``doc`` as it must be written so that, merged under ``defaults``, it loads as ``doc``.

    With ``factor`` the leaves the defaults supply with the same value are left out (and
    ``contract_id`` when it is the default contract); always, leaves the defaults would add
    but the enrollment does not have are pinned to ``null``.
    """
    given = for_type(defaults, kind)
    body: dict[str, Any] = {k: _copy(v) for k, v in doc.items()}
    if factor:
        for path, value in leaves({k: v for k, v in doc.items() if k in FACTORABLE}).items():
            if get(given, path) == (True, value):
                _remove(body, path)
        contract = given.get("contract_id", default_contract)
        if contract is not None and doc.get("contract_id") == contract:
            body.pop("contract_id", None)
        for key in [k for k, v in body.items() if v == {} and k not in given]:
            del body[key]  # an empty mapping (csr: {}) loads as the field's default anyway
    for path in leaves({k: v for k, v in given.items() if k in FACTORABLE}):
        if get(doc, path)[0]:
            continue
        missing = next(path[:i] for i in range(1, len(path) + 1) if not get(doc, path[:i])[0])
        if len(missing) > 1 and not isinstance(get(doc, missing[:-1])[1], Mapping):
            continue  # the spec's scalar or list replaces the whole default there
        if not get(body, missing)[0]:
            put(body, missing, None)
    return body


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def _remove(body: dict[str, Any], path: Leaf) -> None:
    """Delete ``path`` and the mappings it leaves empty (mappings empty before stay)."""
    parents = [body]
    for part in path[:-1]:
        parents.append(parents[-1][part])
    del parents[-1][path[-1]]
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth]:
            break
        del parents[depth - 1][path[depth - 1]]
