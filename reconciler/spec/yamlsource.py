"""Safe YAML with provenance: every mapping and sequence remembers where each entry came from.

The loader is a ``yaml.SafeLoader`` subclass that

- records the line of every mapping key and sequence item (``MarkedDict`` / ``MarkedList``),
- rejects duplicate keys (YAML says keys are unique; PyYAML silently keeps the last),
- rejects every tag outside the plain JSON-like set (no ``!!python/...``, ``!!set``, ``!!binary``),
- reads booleans the YAML 1.2 way (only true/false), so ``ocsp_stapling: on`` stays the string
  ``"on"`` and country ``NO`` stays Norway; timestamps stay strings too,
- caps alias expansion so a "billion laughs" document cannot blow up the path index: at most
  ``MAX_ALIASES`` aliases, and at most ``MAX_VALUES`` values once aliases are expanded (and as
  written, per file: pure-Python parsing costs ~70 us a value),
- caps nesting at ``MAX_DEPTH`` levels (deeper documents would exhaust Python's stack),
- reads files through ``read_source``: at most ``MAX_FILE_BYTES``, UTF-8 only (a UTF-8 BOM is
  dropped), every refusal located at a line.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["MAX_FILE_BYTES", "Mark", "MarkedDict", "MarkedList", "YamlProblem", "load_documents", "Path_", "lookup",
           "read_source", "shorten"]

Path_ = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}
_MAX_ALIASES = 100
MAX_VALUES = 20_000  # values in a file, and in a document with aliases expanded; a spec holds ~30
MAX_DEPTH = 50  # nesting levels; a spec needs about five
MAX_DOCUMENTS = 1000  # `---` documents in one file
MAX_FILE_BYTES = 1 << 20  # 1 MiB per spec file or reconcile.yaml
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
        self.node_count = 0
        self.depth = 0
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
        # PyYAML composes recursively: without a cap, a deeply nested document ends in RecursionError.
        # Counting nodes as they are composed stops a huge document early (pure-Python parsing is slow).
        self.depth += 1
        self.node_count += 1
        try:
            if self.depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise self.problem(f"nested more than {MAX_DEPTH} levels deep", event.start_mark.line)
            if self.node_count > MAX_VALUES:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise self.problem(f"more than {MAX_VALUES} values in one file; split it into several files",
                                   event.start_mark.line)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self.depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if node.tag not in _ALLOWED_TAGS:
            raise self.problem(f"tag {node.tag!r} is not allowed in specs (plain YAML values only)",
                               node.start_mark.line)
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise self.problem(f"value cannot be read: {shorten(str(exc), 120)}", node.start_mark.line) from None

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
    try:
        loader = _Loader(text, line_map)
    except yaml.reader.ReaderError as exc:  # a character YAML forbids (NUL, escape, ...) anywhere in the text
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise YamlProblem(f"character {char!r} (U+{ord(char):04X}) is not allowed in YAML; remove it",
                          line_map(line)[0] if line_map else line) from None
    loader.display_name = display_name
    docs: list[tuple[Any, int]] = []
    try:
        count = 0
        while loader.check_node():
            count += 1
            if count > MAX_DOCUMENTS:
                raise loader.problem(f"more than {MAX_DOCUMENTS} YAML documents in one file",
                                     loader.peek_event().start_mark.line)  # type: ignore[no-untyped-call]
            loader.alias_count = 0
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            _check_expansion(node, loader)
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
        if "recursive node" in what:
            what = "an alias refers to a value that contains it (recursive data is not allowed)"
        if "'\\t'" in what:
            what += "; indent YAML with spaces, never tabs"
        if mark is None:
            raise YamlProblem(what, None) from None
        raise loader.problem(what, mark.line) from None
    except yaml.YAMLError as exc:  # pragma: no cover - reader errors without marks
        raise YamlProblem(str(exc), None) from None
    finally:
        loader.dispose()
    return docs


def _check_expansion(root: Node, loader: _Loader) -> None:
    """Refuse a document whose aliases expand it beyond ``MAX_VALUES`` values ("billion laughs").

    PyYAML shares aliased nodes, so parsing stays cheap, but anything that walks the data (a
    message quoting a value, a merge, a hash) would visit every expanded value. Counting uses a
    memo per node, so it costs one visit per distinct node.
    """
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a recursive alias is refused later, by the constructor
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        total = 1 + sum(size(child) for child in children)
        if total > MAX_VALUES:
            raise loader.problem(f"this value expands to more than {MAX_VALUES} values through aliases "
                                 "(a 'billion laughs' document?)", node.start_mark.line)
        sizes[id(node)] = total
        return total

    size(root)


def shorten(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters with the number left out, for messages quoting input."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


_UTF16_32 = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32",
             codecs.BOM_UTF16_LE: "UTF-16", codecs.BOM_UTF16_BE: "UTF-16"}


_INVISIBLE_BREAK = re.compile("[\u0085\u2028\u2029]")


def read_source(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """The text of a spec or config file; ``YamlProblem`` (with a line when one applies) when it is
    larger than ``limit`` bytes, not UTF-8, or binary. Reads at most ``limit + 1`` bytes."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise YamlProblem(f"cannot read: {exc.strerror or exc}", None) from None
    if len(data) > limit:
        raise YamlProblem(f"larger than {limit // 1024} KiB (this is the line where the limit is crossed); "
                          "split it into several files", data.count(b"\n", 0, limit) + 1)
    for bom, name in _UTF16_32.items():  # UTF-32 LE starts like UTF-16 LE, so UTF-32 is tried first
        if data.startswith(bom):
            raise YamlProblem(f"the file is {name} (it starts with a {name} byte-order mark); save it as UTF-8", 1)
    nul = data.find(b"\0")
    if nul >= 0:
        raise YamlProblem("NUL byte: this is a binary file, or UTF-16 without a byte-order mark; save it as UTF-8",
                          data.count(b"\n", 0, nul) + 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1].hex()
        raise YamlProblem(f"not UTF-8: byte 0x{bad} cannot be decoded ({exc.reason}); save the file as UTF-8",
                          data.count(b"\n", 0, exc.start) + 1) from None
    # YAML ends lines at these too, editors and templates do not: every line number after one would be off.
    odd = _INVISIBLE_BREAK.search(text)
    if odd:
        raise YamlProblem(f"character U+{ord(odd.group()):04X} is an invisible line break; remove it",
                          text.count("\n", 0, odd.start()) + 1)
    return text


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
