"""jinja2 rendering of spec files before YAML parsing, sandboxed and strict.

Every spec file is a template: ``{{ domain }}`` reads ``variables`` from reconcile.yaml. The
environment is ``SandboxedEnvironment`` (templates cannot reach Python internals) with
``StrictUndefined`` (a misspelt variable is an error, never an empty string). Templates cannot
include other files.

The sandbox stops reading internals, not exhausting memory or CPU, so rendering is also bounded
(``Budget``): ``*``, ``**`` and ``%`` refuse results beyond ``MAX_TEXT`` characters or
``MAX_BITS``-bit numbers, padding methods and filters take widths up to ``MAX_WIDTH``, every
``{% for %}`` counts its iterations against ``MAX_ITERATIONS`` per file, calls nest at most
``MAX_CALL_DEPTH`` deep and number at most ``MAX_CALLS``, and the output stops at ``MAX_TEXT``.
Each refusal is a ``TemplateProblem`` at the template line that caused it.

Line numbers: YAML errors are found in the *rendered* text, but people edit the *source*.
``LineMap`` maps a rendered line back: exactly when rendering kept the line count (plain
substitutions), and otherwise by aligning unchanged lines (a ``{% for %}`` block's output maps
to the block's first source line). ``LineMap.exact`` says which case applies.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

from reconciler.spec.yamlsource import shorten

__all__ = ["MAX_TEXT", "LineMap", "TemplateProblem", "render"]

MAX_TEXT = 1 << 20  # characters of any string/list a template builds, and of the output
MAX_BITS = 4096  # size of numbers built with ** and *
MAX_WIDTH = 1000  # padding widths (center, indent, ljust, '%9999d', ...)
MAX_ITERATIONS = 100_000  # {% for %} iterations per file, nested loops included
MAX_CALLS = 20_000  # calls (macros, methods, ~) per file
MAX_CALL_DEPTH = 50
_BUDGET_NAME = "_reconcile_loop_budget"
_CONCAT_NAME = "_reconcile_concat"
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_WIDE_FORMAT = re.compile(r"%[-#0 +]*(?:\*|\d{4,})|%[-#0 +]*\d*\.(?:\*|\d{4,})")


class TemplateProblem(Exception):
    """A template failed to compile or render; ``line`` is the source line when known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _weight(value: Any, limit: int = MAX_TEXT) -> int:
    """About how many characters ``value`` prints as, shared parts counted every time they appear
    (a list of ten references to a list of ten ... is a "billion laughs"); stops counting past ``limit``."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset | dict):
            total += len(item) + 1
            if total <= limit:
                stack.extend(item.items() if isinstance(item, dict) else item)
        else:
            total += 1
        if total > limit:
            break
    return total


def _check_weight(value: Any, what: str) -> Any:
    weight = _weight(value)
    if weight > MAX_TEXT:
        raise SecurityError(f"{what} would build more than {MAX_TEXT} characters or items")
    return value


def _check_result(value: Any, what: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_BITS:
        raise SecurityError(f"{what} would build a number of more than {MAX_BITS} bits")
    return _check_weight(value, what)


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and abs(width) > MAX_WIDTH:
        raise SecurityError(f"{what} width {width} is larger than {MAX_WIDTH}")


def _check_format(text: Any) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text):
        raise SecurityError(f"format widths and precisions are limited to {MAX_WIDTH - 1} ('*' is not allowed)")


def _bounded_filter(func: Callable[..., Any], name: str, width_at: int | None) -> Callable[..., Any]:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_weight((args, kwargs), f"filter {name}'s input")
        if width_at is not None and len(args) > width_at:
            _check_width(args[width_at], f"filter {name}")
        for key in ("width", "length"):
            _check_width(kwargs.get(key), f"filter {name}")
        if name == "format" and args:
            _check_format(args[0])
        return _check_result(func(*args, **kwargs), f"filter {name}")

    for attr in ("jinja_pass_arg",):  # keep @pass_context/@pass_eval_context markers
        if hasattr(func, attr):
            setattr(bounded, attr, getattr(func, attr))
    return bounded


class _BoundedEnvironment(SandboxedEnvironment):
    """The sandbox plus a resource budget for one render (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.iterations = 0
        self.calls = 0
        self.depth = 0
        self.globals[_BUDGET_NAME] = self._count
        self.globals[_CONCAT_NAME] = _concat
        self.globals.pop("lipsum", None)  # lipsum(n=10**6) is a CPU and memory bomb with no use in specs
        widths = {"center": 1, "indent": 1, "wordwrap": 2, "truncate": 2}
        for name, func in list(self.filters.items()):
            self.filters[name] = _bounded_filter(func, name, widths.get(name))

    def _count(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.iterations += 1
            if self.iterations > MAX_ITERATIONS:
                raise SecurityError(f"more than {MAX_ITERATIONS} loop iterations in one file")
            yield item

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        # Every {% for %} iterates through the budget counter, so nested loops cannot spin for ever.
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name(_BUDGET_NAME, "load", lineno=loop.lineno), [loop.iter], [], None, None,
                                   lineno=loop.lineno)
        # `a ~ b` would print nested lists whole; route it through the weight check.
        return _ConcatGuard().visit(tree)  # type: ignore[no-any-return]

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # jinja sandboxes what str.format reads, not how wide it pads: '{:>999999999}'.format(1).
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            for _, _, spec, _ in string.Formatter().parse(str(value.__self__)):
                if spec and re.search(r"\d{4,}|[{}]", spec):
                    raise SecurityError(f"format widths and precisions are limited to {MAX_WIDTH - 1} "
                                        "(nested '{}' is not allowed)")
        return wrapped

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # jinja returns an Undefined that fails only when printed; a list or map() of them renders
        # as "[Undefined]" and the escape attempt would read as a mere bad value. Fail right here.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe.")

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in _PADDING_METHODS:
            return False  # unbounded padding; specs have filters for what they need
        return bool(super().is_safe_attribute(obj, attr, value))

    def call_binop(self, context: jinja2.runtime.Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            if max(left.bit_length(), 1) * right > MAX_BITS and abs(left) > 1:
                raise SecurityError(f"{left} ** {right} would build a number of more than {MAX_BITS} bits")
        if operator_ == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int) and _weight(seq) * count > MAX_TEXT:
                    raise SecurityError(f"repeating {_weight(seq)} characters or items {count} times is too much")
        if operator_ == "%":
            _check_format(left)
            _check_weight((left, right), "operator %")
        return _check_result(super().call_binop(context, operator_, left, right), f"operator {operator_}")

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any,  # noqa: N805 - jinja's signature
             **kwargs: Any) -> Any:
        __self.calls += 1
        if __self.calls > MAX_CALLS:
            raise SecurityError(f"more than {MAX_CALLS} calls in one file")
        if __self.depth >= MAX_CALL_DEPTH:
            raise SecurityError(f"calls nested more than {MAX_CALL_DEPTH} deep (a macro calling itself?)")
        _check_weight((args, kwargs), "a call's arguments")
        __self.depth += 1
        try:
            return _check_result(SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs), "a call")
        finally:
            __self.depth -= 1


class _ConcatGuard(NodeTransformer):
    """Rewrites ``a ~ b`` into a call of the checked concatenation."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802 - jinja's visitor naming
        self.generic_visit(node)
        return nodes.Call(nodes.Name(_CONCAT_NAME, "load", lineno=node.lineno), [nodes.List(node.nodes)], [], None,
                          None, lineno=node.lineno)


def _concat(items: list[Any]) -> str:
    return "".join(str(_check_weight(item, "operator ~")) for item in items)


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}`` passes here before it is printed."""
    return _check_weight(value, "printing this value")


def _environment(source: str, name: str) -> _BoundedEnvironment:
    loaded: list[str] = []

    def load(requested: str) -> tuple[str, str, Any] | None:
        # Only the file being rendered exists for this environment, and only once: no {% include %}
        # of other files, nor of itself (that recursed until Python's stack ran out).
        if requested != name or loaded:
            return None
        loaded.append(name)
        return source, name, lambda: True

    return _BoundedEnvironment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_finalize,
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
        raise TemplateProblem(f"template syntax error: {exc.message}", exc.lineno) from None
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
