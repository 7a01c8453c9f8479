"""The resource budget of spec templates: the jinja2 sandbox, bounded.

``ImmutableSandboxedEnvironment`` stops templates reading Python internals and mutating lists and
dicts (``l.extend(l)`` forty times), not exhausting memory or CPU.
``BoundedEnvironment`` adds, per render: ``+``, ``*``, ``**`` and ``%`` refuse results beyond ``MAX_TEXT``
characters or ``MAX_BITS``-bit numbers; padding methods and filters take widths up to
``MAX_WIDTH``; every ``{% for %}`` counts its iterations against ``MAX_ITERATIONS``; calls nest at
most ``MAX_CALL_DEPTH`` deep and number at most ``MAX_CALLS``; whatever is printed, concatenated
(``~``), filtered or passed to a call is weighed first, nested lists counted whole (a list of ten
references to a list of ten ... is a "billion laughs"). Unsafe attribute access raises at once.
Every refusal is a ``SecurityError``, which the renderer reports at its template line.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from jinja2.visitor import NodeTransformer

__all__ = ["MAX_BITS", "MAX_CALLS", "MAX_CALL_DEPTH", "MAX_ITERATIONS", "MAX_TEXT", "MAX_WIDTH",
           "BoundedEnvironment"]

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
    # Filters marked @pass_context/@pass_eval_context/@pass_environment (async variants included)
    # get that object first; ``width_at`` counts from the filtered value.
    offset = 1 if getattr(func, "jinja_pass_arg", None) else 0

    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_weight((args, kwargs), f"filter {name}'s input")
        if width_at is not None and len(args) > offset + width_at:
            _check_width(args[offset + width_at], f"filter {name}")
        for key in ("width", "length", "linecount", "slices", "indent"):
            _check_width(kwargs.get(key), f"filter {name}")
        # A filter may combine its subject with each argument (replace, join, wordwrap's wrapstring):
        # small parts, huge product. Bound the product before running it.
        subject = args[offset] if len(args) > offset else None
        if _weight(subject) * (1 + _weight((args[offset + 1:], kwargs))) > MAX_TEXT:
            raise SecurityError(f"filter {name} on this input could build more than {MAX_TEXT} characters or items")
        if name == "format" and args:
            _check_format(args[0])
        return _check_result(func(*args, **kwargs), f"filter {name}")

    for attr in ("jinja_pass_arg",):  # keep @pass_context/@pass_eval_context markers
        if hasattr(func, attr):
            setattr(bounded, attr, getattr(func, attr))
    return bounded


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox plus a resource budget for one render (see the module docstring)."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**{"finalize": _finalize, **options})
        self.iterations = 0
        self.calls = 0
        self.depth = 0
        self.globals[_BUDGET_NAME] = self._count
        self.globals[_CONCAT_NAME] = _concat
        self.globals.pop("lipsum", None)  # lipsum(n=10**6) is a CPU and memory bomb with no use in specs
        widths = dict.fromkeys(("center", "indent", "wordwrap", "truncate", "batch", "slice", "tojson"), 1)
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
        if operator_ == "+" and isinstance(left, str | list | tuple) and _weight(left) + _weight(right) > MAX_TEXT:
            raise SecurityError(f"adding these would build more than {MAX_TEXT} characters or items")
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
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str) and len(owner) * (1 + _weight((args, kwargs))) > MAX_TEXT:
            # 'a' * 10**6 then .replace('a', 'b' * 10**6): each part is small, the result is not.
            raise SecurityError(f"calling {getattr(__obj, '__name__', 'this method')} on {len(owner)} characters "
                                f"with these arguments could build more than {MAX_TEXT} characters")
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
