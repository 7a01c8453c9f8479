"""Reference pages generated from the code, so they cannot drift from it.

``python -m reconciler.docs_gen`` (from a checkout) writes them; ``--check`` exits 1 naming every
page that differs from what the code generates now, and ``tests/test_docs.py`` fails the same way.

===============================  ==============================================================
page                             generated from
===============================  ==============================================================
docs/reference/cli.md            the click commands under ``reconciler.cli.main.cli``
docs/reference/spec.md           ``reconcile schema`` (the spec models' JSON Schema)
docs/reference/config.md         ``reconcile schema --kind config``
docs/reference/plan-format.md    the ``Plan`` model (``reconcile plan --format json``)
docs/reference/state-format.md   the ``State`` model (``reconcile state pull``)
region ``exit-codes``            ``reconciler.cli.exit_codes.MEANINGS``, in docs/exit-codes.md
region ``benchmarks``            ``benchmarks/results/latest.json``, in docs/performance.md
===============================  ==============================================================

A *region* is the part of a hand-written page between ``<!-- generated:NAME -->`` and
``<!-- /generated:NAME -->``; only that part is rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from reconciler.docs_gen import pages

PAGES: dict[str, Callable[[Path], str]] = {
    "docs/reference/cli.md": pages.cli_page,
    "docs/reference/spec.md": pages.spec_page,
    "docs/reference/config.md": pages.config_page,
    "docs/reference/plan-format.md": pages.plan_page,
    "docs/reference/state-format.md": pages.state_page,
}
REGIONS: dict[str, tuple[str, Callable[[Path], str]]] = {
    "exit-codes": ("docs/exit-codes.md", pages.exit_codes_region),
    "benchmarks": ("docs/performance.md", pages.benchmarks_region),
}


def _region(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated:{re.escape(name)} -->\n)(.*?)(<!-- /generated:{re.escape(name)} -->)",
                      re.DOTALL)


def generate(root: Path) -> dict[Path, str]:
    """Every generated file under ``root`` (a checkout), with the content the code gives it now."""
    out = {root / path: make(root) for path, make in PAGES.items()}
    for name, (path, make) in REGIONS.items():
        target = root / path
        current = out.get(target) or target.read_text(encoding="utf-8")
        pattern = _region(name)
        if not pattern.search(current):  # a page edited without its markers
            raise ValueError(f"{path}: no '<!-- generated:{name} -->' ... '<!-- /generated:{name} -->' region")
        match = pattern.search(current)
        assert match is not None
        body = make(root).rstrip("\n") + "\n"
        out[target] = current[:match.start(2)] + body + current[match.end(2):]
    return out


def stale(root: Path) -> list[Path]:
    """Generated files whose committed content differs from what the code generates."""
    return [path for path, text in generate(root).items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text]


def write(root: Path) -> list[Path]:
    """Write every stale generated file; returns those written."""
    changed = stale(root)
    contents = generate(root)
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(contents[path], encoding="utf-8")
    return changed
