"""Render a plan as text (people), markdown (pull-request comments) or JSON (tools).

Every rendering reads only :meth:`Plan.to_data`, so what a reviewer sees is exactly what a saved
plan holds. Text and markdown come from jinja2 templates in ``templates/``; markdown escapes
``|``, ``<``, ``>``, ``&`` and backticks in every value so a hostile value cannot break the table
or inject HTML into a pull-request page. Host names in punycode are shown with their Unicode
form beside them (``reconciler.idn``); JSON keeps them as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import jinja2

from reconciler.idn import with_unicode
from reconciler.plan.model import Plan

Format = Literal["text", "markdown", "json"]
FORMATS: tuple[Format, ...] = ("text", "markdown", "json")

MARKDOWN_MARKER = "<!-- cps-reconciler-plan -->"
"""Hidden marker so a CI job can find and update its one sticky plan comment."""

_ANSI = {"green": "32", "yellow": "33", "red": "31", "cyan": "36", "magenta": "35", "bold": "1", "dim": "2"}
MARKERS = {"move": "→", "create": "+", "adopt": "=", "replace": "+/-", "update": "~", "update-network": "~", "renew": "↻",
           "continue": ">", "in-progress": "…", "delete": "-", "release": "○"}
_COLOURS = {"move": "cyan", "create": "green", "adopt": "green", "replace": "magenta", "update": "yellow", "renew": "green",
            "update-network": "yellow", "continue": "cyan", "in-progress": "dim", "delete": "red", "release": "yellow"}
_EMOJI = {"move": "🔀", "create": "➕", "adopt": "🔗", "replace": "♻️", "update": "✏️", "update-network": "✏️", "renew": "🔄",
          "continue": "▶️", "in-progress": "⏳", "delete": "🗑️", "release": "🔓"}


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _md_escape(value: Any) -> str:
    text = value if isinstance(value, str) else _value(value)
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "&#124;"), ("`", "&#96;")):
        text = text.replace(raw, entity)
    return text.replace("\r", "").replace("\n", "<br>")


def _environment(color: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        undefined=jinja2.StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )

    def paint(text: Any, style: str) -> str:
        text = str(text)
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m" if color and style in _ANSI else text

    env.filters.update(paint=paint, value=_value, md=_md_escape)
    env.globals.update(markers=MARKERS, colours=_COLOURS, emoji=_EMOJI, marker=MARKDOWN_MARKER)
    return env


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_data(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render(plan: Plan, fmt: Format = "text", *, color: bool = False) -> str:
    """The plan in ``fmt``; ``color`` only affects text (ANSI escapes)."""
    if fmt == "json":
        return render_json(plan)
    template = "plan.txt.j2" if fmt == "text" else "plan.md.j2"
    data = plan.to_data()
    # For people: punycode host names get their Unicode form beside them (JSON keeps A-labels).
    return with_unicode(_environment(color and fmt == "text").get_template(template).render(plan=data))
