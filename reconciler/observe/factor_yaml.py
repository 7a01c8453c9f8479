"""Add keys to reconcile.yaml by inserting lines, so its comments, order and quoting survive.

New keys go after the last line of the block mapping that will hold them, indented like its
keys. Where that is impossible without rewriting what is there (a flow-style ``{...}``
mapping, a scalar or list where a mapping would be needed) those keys are not added. The
result is parsed again and must equal the old content plus exactly the additions; otherwise
nothing is added at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.observe.factor import Leaf, leaves, merged, tree
from reconciler.spec.yamlsource import YamlProblem, load_documents

HEADER = "# added by `reconcile import --factor-defaults`: shared by every imported enrollment"


@dataclass
class Edit:
    """The new text and the leaves (paths from the document root) that could not be added."""

    text: str
    refused: list[Leaf] = field(default_factory=list)
    reason: str = ""


@dataclass(order=True)
class _Insertion:
    after_line: int  # 0-based line the block goes after (-1: at the top)
    indent: int
    block: dict[str, Any] = field(compare=False)


def add_keys(text: str, additions: Mapping[str, Any]) -> Edit:
    """``text`` (a YAML mapping, maybe empty) with the nested ``additions`` merged in as new lines."""
    wanted = leaves(additions)
    if not wanted:
        return Edit(text)
    try:
        old = _parse(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader) if text.strip() else None
    except (YamlProblem, yaml.YAMLError):
        return Edit(text, list(wanted), "reconcile.yaml does not parse")
    if root is None or (isinstance(root, ScalarNode) and root.value in ("", "~", "null")):
        new_text = (text.rstrip("\n") + "\n" if text.strip() else "") + _render(additions, 0)
        return _checked(text, new_text, old or {}, additions, [])
    if not isinstance(root, MappingNode) or root.flow_style or not root.value:
        return Edit(text, list(wanted), "reconcile.yaml is not a block mapping")
    insertions: list[_Insertion] = []
    refused: list[Leaf] = []
    _plan(root, additions, (), insertions, refused)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for item in sorted(insertions, key=lambda i: (-i.after_line, i.indent)):
        lines[item.after_line + 1:item.after_line + 1] = [_render(item.block, item.indent)]
    accepted = {p: v for p, v in wanted.items() if p not in refused}
    edit = _checked(text, "".join(lines), old, tree(accepted), refused)
    if refused and not edit.reason:
        edit.reason = "a flow-style mapping or a non-mapping value is in the way"
    return edit


def _parse(text: str) -> Any:
    docs = load_documents(text, "reconcile.yaml")
    return docs[0][0] if docs else None


def _checked(text: str, new_text: str, old: Any, added: Mapping[str, Any], refused: list[Leaf]) -> Edit:
    """The edit, if the new text parses to exactly old + added; else no edit at all."""
    try:
        ok = _parse(new_text) == merged(old or {}, added)
    except YamlProblem:
        ok = False
    if not ok:
        return Edit(text, [*leaves(added), *refused], "inserting lines would change what is there")
    return Edit(new_text, refused)


def _plan(node: MappingNode, additions: Mapping[str, Any], path: Leaf, insertions: list[_Insertion],
          refused: list[Leaf]) -> None:
    children = {key.value: value for key, value in node.value if isinstance(key, ScalarNode)}
    new: dict[str, Any] = {}
    for key, value in additions.items():
        child = children.get(key)
        if child is None:
            new[key] = value
        elif isinstance(value, Mapping) and isinstance(child, MappingNode) and not child.flow_style and child.value:
            _plan(child, value, (*path, key), insertions, refused)
        elif isinstance(value, Mapping):
            refused.extend((*path, key, *rest) for rest in leaves(value))
        else:
            refused.append((*path, key))
    if new:
        if node.flow_style or not node.value:
            refused.extend((*path, *p) for p in leaves(new))
        else:
            insertions.append(_Insertion(_last_line(node), node.value[0][0].start_mark.column, new))


def _last_line(node: Node) -> int:
    """The 0-based line holding the end of ``node``'s content (not comments after it)."""
    if isinstance(node, MappingNode) and not node.flow_style and node.value:
        return _last_line(node.value[-1][1])
    if isinstance(node, SequenceNode) and not node.flow_style and node.value:
        return _last_line(node.value[-1])
    mark = node.end_mark
    return int(mark.line if mark.column > 0 else mark.line - 1)


def _render(block: Mapping[str, Any], indent: int) -> str:
    body = yaml.safe_dump(dict(block), sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    pad = " " * indent
    return "".join(f"{pad}{line}\n" if line else "\n" for line in [HEADER, *body.splitlines()])
