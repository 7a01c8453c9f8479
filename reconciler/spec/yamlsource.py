"""Safe YAML with provenance: every mapping and sequence remembers where each entry came from.

The loader is a ``yaml.SafeLoader`` subclass that

- records the line of every mapping key and sequence item (``MarkedDict`` / ``MarkedList``),
- rejects duplicate keys (YAML says keys are unique; PyYAML silently keeps the last),
- rejects every tag outside the plain JSON-like set (no ``!!python/...``, ``!!set``, ``!!binary``),
- reads booleans the YAML 1.2 way (only true/false), so ``ocsp_stapling: on`` stays the string
  ``"on"`` and country ``NO`` stays Norway; timestamps stay strings too,
- caps alias expansion so a "billion laughs" document cannot blow up the path index.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["Mark", "MarkedDict", "MarkedList", "YamlProblem", "load_documents", "Path_", "lookup"]

Path_ = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}
_MAX_ALIASES = 100
_APPROX = " (line approximate: the template changes the line count)"

LineMapper = Callable[[int], tuple[int, bool]]
"""Rendered line -> (source line, exactly known)."""


@dataclass(frozen=True)
class Mark:
    """A place in a source file: display name and 1-based line.

    ``approximate`` is set when a template changed the line count and this line could only be
    mapped back to the template construct that generated it.
    """

    file: str
    line: int
    approximate: bool = False


class MarkedDict(dict[str, Any]):
    """A mapping that knows the line of itself and of each key."""

    mark: Mark
    key_marks: dict[str, Mark]


class MarkedList(list[Any]):
    """A sequence that knows the line of itself and of each item."""

    mark: Mark
    item_marks: list[Mark]


class YamlProblem(Exception):
    """A YAML document could not be read; carries the 1-based line when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _Loader(yaml.SafeLoader):
    """SafeLoader with marks, duplicate-key and tag checks (see module docstring)."""

    display_name = "<string>"

    def __init__(self, stream: str, line_map: LineMapper | None = None) -> None:
        super().__init__(stream)
        self.alias_count = 0
        self.line_map = line_map

    def source_line(self, zero_based: int) -> tuple[int, bool]:
        line = zero_based + 1
        return self.line_map(line) if self.line_map else (line, True)

    def _mark(self, node: Node) -> Mark:
        line, exact = self.source_line(node.start_mark.line)
        return Mark(self.display_name, line, not exact)

    def problem(self, message: str, zero_based: int) -> YamlProblem:
        line, exact = self.source_line(zero_based)
        return YamlProblem(message if exact else message + _APPROX, line)

    def compose_node(self, parent: Node | None, index: int) -> Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > _MAX_ALIASES:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise self.problem(f"more than {_MAX_ALIASES} aliases in one document", event.start_mark.line)
        return super().compose_node(parent, index)  # type: ignore[no-any-return]

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if node.tag not in _ALLOWED_TAGS:
            raise self.problem(f"tag {node.tag!r} is not allowed in specs (plain YAML values only)",
                               node.start_mark.line)
        return super().construct_object(node, deep=deep)

    def construct_marked_mapping(self, node: MappingNode) -> Iterator[MarkedDict]:
        result = MarkedDict()
        result.mark = self._mark(node)
        result.key_marks = {}
        yield result
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _TAG + "merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise self.problem("mapping keys must be plain scalars", key_node.start_mark.line)
            if key in seen:
                raise self.problem(f"duplicate key {key!r} (first defined on line {seen[key]})",
                                   key_node.start_mark.line)
            seen[key] = self.source_line(key_node.start_mark.line)[0]
        self.flatten_mapping(node)  # resolves `<<:` merges; explicit keys come last and win
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            # Keys are used as field names; non-string keys (e.g. `1: x`) become strings and
            # fail field validation with a readable name rather than a type error here.
            skey = key if isinstance(key, str) else str(key)
            result[skey] = self.construct_object(value_node, deep=True)
            result.key_marks[skey] = self._mark(key_node)

    def construct_marked_sequence(self, node: SequenceNode) -> Iterator[MarkedList]:
        result = MarkedList()
        result.mark = self._mark(node)
        result.item_marks = []
        yield result
        for child in node.value:
            result.append(self.construct_object(child, deep=True))
            result.item_marks.append(self._mark(child))


_Loader.add_constructor(_TAG + "map", _Loader.construct_marked_mapping)
_Loader.add_constructor(_TAG + "seq", _Loader.construct_marked_sequence)

# YAML 1.2 core booleans only; drop 1.1 yes/no/on/off and timestamps (both surprise people).
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_TAG + "bool", _TAG + "timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def load_documents(text: str, display_name: str, line_map: LineMapper | None = None) -> list[tuple[Any, int]]:
    """Parse every YAML document in ``text``; return (data, first line) per non-empty document.

    ``line_map`` translates lines of ``text`` (rendered) to lines of the file people edit.
    Raises ``YamlProblem`` (with a line) on syntax errors, duplicate keys and refused tags.
    """
    loader = _Loader(text, line_map)
    loader.display_name = display_name
    docs: list[tuple[Any, int]] = []
    try:
        while loader.check_node():
            loader.alias_count = 0
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            data = loader.construct_document(node)
            if data is None and isinstance(node, ScalarNode):
                continue  # an empty document (e.g. a trailing `---`)
            docs.append((data, loader.source_line(node.start_mark.line)[0]))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or "invalid YAML"
        if exc.context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            started = loader.source_line(exc.context_mark.line)[0]
            what += f" ({exc.context} that starts on line {started})"
        if isinstance(exc, ConstructorError) and "constructor for the tag" in what:
            what = "unknown tag; only plain YAML values are allowed"
        if mark is None:
            raise YamlProblem(what, None) from None
        raise loader.problem(what, mark.line) from None
    except yaml.YAMLError as exc:  # pragma: no cover - reader errors without marks
        raise YamlProblem(str(exc), None) from None
    finally:
        loader.dispose()
    return docs


def lookup(data: Any, path: Path_) -> Mark | None:
    """The mark of the deepest existing node along ``path`` (key line for mapping entries)."""
    found: Mark | None = getattr(data, "mark", None)
    node = data
    for part in path:
        if isinstance(node, MarkedDict) and isinstance(part, str) and part in node:
            found = node.key_marks.get(part, found)
            node = node[part]
        elif isinstance(node, MarkedList) and isinstance(part, int) and 0 <= part < len(node):
            found = node.item_marks[part]
            node = node[part]
        else:
            break
    return found
