"""jinja2 rendering of spec files before YAML parsing, sandboxed and strict.

Every spec file is a template: ``{{ domain }}`` reads ``variables`` from reconcile.yaml. The
environment is ``SandboxedEnvironment`` (templates cannot reach Python internals) with
``StrictUndefined`` (a misspelt variable is an error, never an empty string). Templates cannot
include other files.

Rendering is bounded (``reconciler.spec.budget``): a template that would exhaust memory or CPU
fails at the line that tried, as does output beyond ``MAX_TEXT``.

Line numbers: YAML errors are found in the *rendered* text, but people edit the *source*.
``line_map`` maps a rendered line back. When rendering kept the line count (plain
substitutions) line N is line N. Otherwise the template is rendered a second time with every
line of its literal text marked with its source line (``_traced``), so that each rendered line,
in every iteration of a ``{% for %}``, maps to the source line that produced it. Only if that is
impossible (the marks would change the output: a ``{% set %}`` block measured by a filter, say)
does ``LineMap`` align unchanged lines instead, and say its answer is approximate.
Template syntax errors carry the column too (jinja2 gives a character offset for some).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import nodes

from reconciler.spec.budget import MAX_TEXT, BoundedEnvironment
from reconciler.spec.yamlsource import shorten

__all__ = ["LineMap", "TemplateProblem", "line_map", "render"]


class TemplateProblem(Exception):
    """A template failed to compile or render; ``line`` (and ``column``) in the source when known."""

    def __init__(self, message: str, line: int | None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


_OFFSET = re.compile(r" at (\d+)$")
_TOKEN = re.compile(r"(?:got|unexpected) '([^']+)'")


def _syntax_problem(exc: jinja2.TemplateSyntaxError, source: str) -> TemplateProblem:
    """Line and column of a syntax error; jinja2 reports some as a character offset ("at 37")."""
    message, line, column = exc.message or "syntax error", exc.lineno, None
    offset = _OFFSET.search(message)
    if offset is not None and int(offset.group(1)) <= len(source):
        position = int(offset.group(1))
        message = message[:offset.start()]
        line = source.count("\n", 0, position) + 1
        column = position - (source.rfind("\n", 0, position) + 1) + 1
    else:
        token = _TOKEN.search(message)
        lines = source.splitlines()
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        if token is not None and text.count(token.group(1)) == 1:
            column = text.index(token.group(1)) + 1
    return TemplateProblem(f"template syntax error: {message}", line, column)


def _environment(source: str, name: str) -> BoundedEnvironment:
    loaded: list[str] = []

    def load(requested: str) -> tuple[str, str, Any] | None:
        # Only the file being rendered exists for this environment, and only once: no {% include %}
        # of other files, nor of itself (that recursed until Python's stack ran out).
        if requested != name or loaded:
            return None
        loaded.append(name)
        return source, name, lambda: True

    return BoundedEnvironment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        cache_size=0,  # so an include of the file itself asks the loader, which refuses
    )


def _deepest_line(source: str) -> int | None:
    """The line where bracket nesting is deepest: where a too deeply nested expression is."""
    depth = best = 0
    where = None
    for number, line in enumerate(source.splitlines(), 1):
        for char in line:
            depth += 1 if char in "([{" else -1 if char in ")]}" else 0
            if depth > best:
                best, where = depth, number
    return where


def _generate(template: jinja2.Template, variables: dict[str, Any], name: str) -> str:
    """Render chunk by chunk, stopping once the output passes MAX_TEXT (at the line producing it)."""
    chunks: list[str] = []
    size = 0
    stream: Any = template.generate(variables)
    for chunk in stream:
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_TEXT:
            line = _suspended_line(stream, template, name)
            stream.close()
            raise TemplateProblem(f"template error: the rendered text is larger than {MAX_TEXT // 1024} KiB", line)
    return "".join(chunks)


def _suspended_line(stream: Any, template: jinja2.Template, name: str) -> int | None:
    inner = stream
    while getattr(inner, "gi_yieldfrom", None) is not None:
        inner = inner.gi_yieldfrom
    frame = getattr(inner, "gi_frame", None)
    if frame is None or frame.f_code.co_filename != name:
        return None
    return int(template.get_corresponding_lineno(frame.f_lineno))


def _template_line(tb: TracebackType | None, name: str) -> int | None:
    # jinja2 rewrites tracebacks so template frames carry the template name and source line;
    # the innermost such frame is where the error happened.
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == name:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render(source: str, name: str, variables: Mapping[str, Any]) -> str:
    """Render ``source`` (named ``name`` in messages) with ``variables``; raise TemplateProblem."""
    env = _environment(source, name)
    try:
        template = env.get_template(name)
        return _generate(template, dict(variables), name)
    except TemplateProblem:
        raise
    except RecursionError:
        raise TemplateProblem("template error: expression nested too deeply", _deepest_line(source)) from None
    except jinja2.TemplateSyntaxError as exc:
        raise _syntax_problem(exc, source) from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template error: {exc.message} (define it under variables: in reconcile.yaml)",
                              _template_line(exc.__traceback__, name)) from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateProblem(f"template error: cannot include {exc.name!r}; specs are single files",
                              _template_line(exc.__traceback__, name)) from None
    except jinja2.TemplateError as exc:  # e.g. SecurityError from the sandbox or the budget
        raise TemplateProblem(f"template error: {shorten(str(exc))}", _template_line(exc.__traceback__, name)) from None
    except Exception as exc:  # noqa: BLE001 - filters raise anything (e.g. int('x')); report, don't crash
        raise TemplateProblem(f"template error: {type(exc).__name__}: {shorten(str(exc))}",
                              _template_line(exc.__traceback__, name)) from None


# Private-use characters that frame a source line number inside the traced rendering.
_OPEN, _CLOSE = "\ue000", "\ue001"
_TRACE = re.compile(f"{_OPEN}(\\d+){_CLOSE}")


def _mark_lines(data: str, first_line: int) -> str:
    """``data`` with its source line marked at its start and after every line break."""
    parts = data.split("\n")
    return "\n".join(f"{_OPEN}{first_line + i}{_CLOSE}{part}" for i, part in enumerate(parts))


def _traced(source: str, name: str, variables: Mapping[str, Any], rendered: str) -> list[int] | None:
    """The source line of each rendered line, from a rendering whose literal text carries its line
    numbers; None when that rendering differs from ``rendered`` once the marks are removed."""
    if _OPEN in source or _CLOSE in source:
        return None
    env = _environment(source, name)
    try:
        tree = env.parse(source, name)
        for node in tree.find_all(nodes.TemplateData):
            node.data = _mark_lines(node.data, node.lineno)
        traced = _generate(env.from_string(tree), dict(variables), name)
    except Exception:  # noqa: BLE001 - marks pushed it over a budget, or anything else: use the fallback
        return None
    if _TRACE.sub("", traced) != rendered:
        return None
    lines: list[int] = []
    last = 1
    for text in traced.split("\n"):
        first = _TRACE.search(text)
        if first is not None:
            lines.append(int(first.group(1)))
            last = int(_TRACE.findall(text)[-1])
        else:
            lines.append(last)  # a line made by an expression alone: where the text before it was
    return lines


class _Traced:
    """Exact map from a traced rendering."""

    def __init__(self, lines: list[int]) -> None:
        self._lines = lines

    def __call__(self, rendered_line: int) -> tuple[int, bool]:
        index = min(max(rendered_line - 1, 0), len(self._lines) - 1)
        return self._lines[index], True


def line_map(source: str, rendered: str, name: str, variables: Mapping[str, Any]) -> Callable[[int], tuple[int, bool]]:
    """Rendered line -> (source line, exact) for ``source`` rendered to ``rendered``."""
    simple = LineMap(source, rendered)
    if simple.exact:
        return simple
    traced = _traced(source, name, variables, rendered)
    return _Traced(traced) if traced else simple


_EXPR = re.compile(r"{{.*?}}|{#.*?#}")
_MAX_CELLS = 4_000_000


def _line_pattern(line: str) -> re.Pattern[str]:
    # A source line matches the rendered lines it can produce: expressions stand for any text.
    parts = _EXPR.split(line)
    return re.compile(".*".join(re.escape(p) for p in parts), re.DOTALL)


class LineMap:
    """Maps 1-based rendered lines to 1-based source lines."""

    def __init__(self, source: str, rendered: str) -> None:
        src = source.splitlines()
        out = rendered.splitlines()
        self.exact = len(src) == len(out)
        self._map: list[int] = []
        self._paired: set[int] = set()
        if self.exact or not out:
            return
        if len(src) * len(out) <= _MAX_CELLS:
            pairs = self._align(src, out)
        else:  # pragma: no cover - only for huge generated files
            matcher = difflib.SequenceMatcher(a=src, b=out, autojunk=False)
            pairs = {j1 + k: i1 + k for i1, j1, size in matcher.get_matching_blocks() for k in range(size)}
        # Unmatched output lines (loop iterations, blank lines from tags) belong to the last
        # matched source line before them, e.g. the body line of a {% for %}.
        last = 0
        self._paired = set(pairs)
        for j in range(len(out)):
            last = pairs.get(j, last)
            self._map.append(last + 1)

    @staticmethod
    def _align(src: list[str], out: list[str]) -> dict[int, int]:
        """Longest common subsequence of (source pattern, rendered line) matches."""
        patterns = [_line_pattern(line) for line in src]
        n, m = len(src), len(out)
        table = [[0] * (m + 1) for _ in range(n + 1)]
        for i in range(n - 1, -1, -1):
            row, below = table[i], table[i + 1]
            pattern = patterns[i]
            for j in range(m - 1, -1, -1):
                if pattern.fullmatch(out[j]):
                    row[j] = below[j + 1] + 1
                else:
                    row[j] = max(below[j], row[j + 1])
        pairs: dict[int, int] = {}
        i = j = 0
        while i < n and j < m:
            if patterns[i].fullmatch(out[j]) and table[i][j] == table[i + 1][j + 1] + 1:
                pairs[j] = i
                i += 1
                j += 1
            elif table[i + 1][j] >= table[i][j + 1]:
                i += 1
            else:
                j += 1
        return pairs

    def source_line(self, rendered_line: int) -> int:
        return self(rendered_line)[0]

    def __call__(self, rendered_line: int) -> tuple[int, bool]:
        """(source line, whether the mapping is exact) for a 1-based rendered line."""
        if self.exact or not self._map:
            return rendered_line, True
        index = min(max(rendered_line - 1, 0), len(self._map) - 1)
        return self._map[index], index in self._paired
