"""The documentation site stays true to the code and complete (what `mkdocs build --strict` in
.ci/run cannot see): generated references current and covering every command, option and field;
every page in the nav; every shell example in a how-to guide either run by a test or marked
illustrative; relative links that lead somewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
import yaml

from reconciler.cli.main import cli
from reconciler.docs_gen import generate, stale, write
from reconciler.plan.model import Plan

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ILLUSTRATIVE = "<!-- illustrative"
"""Put ``<!-- illustrative: why -->`` on the line before a shell block no test runs."""
SHELL = {"bash", "sh", "shell", "console", "zsh"}
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
RUN_BY = {
    "first-repository.md": "tests/e2e/test_guides.py",
    "third-party.md": "tests/e2e/test_guides.py",
    "importing.md": "tests/e2e/test_guides.py",
    "postgres.md": "tests/e2e/test_guides.py",
    "migrate-from-terraform.md": "tests/e2e/test_migrate_guide.py",
}
"""Guides whose ``## Walkthrough`` section a test runs as written (tests/e2e/walkthrough.py)."""


def _nav() -> dict[str, list[str]]:
    """mkdocs.yml's nav: section title -> page paths."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    sections: dict[str, list[str]] = {}
    for item in config["nav"]:
        ((title, value),) = item.items()
        pages = [value] if isinstance(value, str) else [next(iter(p.values())) for p in value]
        sections[title] = pages
    return sections


def test_generated_reference_pages_are_current() -> None:
    assert stale(ROOT) == [], "regenerate: python -m reconciler.docs_gen"


def _commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if command.hidden:
            continue
        found.append((f"{prefix} {name}", command))
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix} {name}")
    return found


def test_command_reference_names_every_command_and_option() -> None:
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (reconcile[^\n]*)\n(.*?)(?=^## |\Z)", page, re.MULTILINE | re.DOTALL))
    everything = [("reconcile", cli), *_commands(cli, "reconcile")]
    assert set(sections) == {path for path, _ in everything}
    for path, command in everything:
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in [*param.opts, *param.secondary_opts]:
                    assert f"`{opt}`" in sections[path], f"{path}: {opt} missing from docs/reference/cli.md"


@pytest.mark.parametrize("schema_file,page", [("reconcile-spec.schema.json", "spec.md"),
                                              ("reconcile-config.schema.json", "config.md")])
def test_field_reference_lists_every_field_of_every_object(schema_file: str, page: str) -> None:
    schema = json.loads((ROOT / schema_file).read_text(encoding="utf-8"))
    text = (DOCS / "reference" / page).read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## ([^\n]*)\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL))
    objects = {name: d for name, d in schema["$defs"].items() if d.get("properties")}
    if schema.get("properties"):
        objects["reconcile.yaml"] = schema
    assert set(objects) <= set(sections), set(objects) - set(sections)
    for name, obj in objects.items():
        for field in obj["properties"]:
            assert f"| `{field}` |" in sections[name], f"{page}: {name}.{field} missing"


def test_plan_json_page_explains_every_key_the_plan_has() -> None:
    """The hand-written plan-json.md (the meaning of each key) covers the model's keys."""
    schema = Plan.model_json_schema(mode="serialization")
    keys = set(schema["properties"])
    for definition in schema["$defs"].values():
        keys |= set(definition.get("properties", {}))
    text = (DOCS / "plan-json.md").read_text(encoding="utf-8")
    missing = sorted(k for k in keys if f"`{k}`" not in text)
    assert not missing, f"docs/plan-json.md does not mention {missing}"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    listed = {page for pages in _nav().values() for page in pages}
    present = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert present - listed == set(), "add these pages to mkdocs.yml nav"
    assert listed - present == set(), "mkdocs.yml nav names missing pages"


def test_relative_links_lead_to_pages() -> None:
    """Links stay inside docs/ (the site has nothing else: link ci.md, not ../examples/...)."""
    broken = []
    for page in DOCS.rglob("*.md"):
        text = FENCE.sub("", page.read_text(encoding="utf-8"))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.is_file() or not path.is_relative_to(DOCS):  # the site holds docs/ only
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def _shell_blocks(text: str) -> list[tuple[int, str]]:
    """(start offset, language) of every fenced block that holds shell commands."""
    found = []
    for match in FENCE.finditer(text):
        language, body = match.group(1), match.group(2)
        commands = any(line.lstrip().startswith(("reconcile ", "$ ")) for line in body.splitlines())
        if language in SHELL or (not language and commands):
            found.append((match.start(), language))
    return found


def _walkthrough_span(text: str) -> tuple[int, int]:
    start = re.search(r"^## Walkthrough\b.*$", text, re.MULTILINE)
    assert start, "no '## Walkthrough' section"
    end = re.search(r"^## ", text[start.end():], re.MULTILINE)
    return start.end(), start.end() + end.start() if end else len(text)


@pytest.mark.parametrize("page", _nav()["How-to guides"])
def test_every_shell_example_in_a_guide_is_run_or_marked_illustrative(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    run = (0, 0)
    if page in RUN_BY:
        runner = (ROOT / RUN_BY[page]).read_text(encoding="utf-8")
        assert page in runner and '"Walkthrough"' in runner, f"{RUN_BY[page]} does not run {page}"
        run = _walkthrough_span(text)
    unmarked = []
    for offset, language in _shell_blocks(text):
        if run[0] <= offset < run[1]:
            continue
        before = text[:offset].rstrip("\n").rsplit("\n", 1)[-1]
        if not before.startswith(ILLUSTRATIVE):
            unmarked.append(f"line {text[:offset].count(chr(10)) + 1} ({language or 'no language'})")
    assert not unmarked, f"docs/{page}: shell blocks neither run by a test nor marked '{ILLUSTRATIVE}: why -->'" \
                         f" on the line before: {unmarked}"


def test_the_generator_covers_its_regions() -> None:
    pages = generate(ROOT)
    assert "<!-- generated:exit-codes -->\n| code |" in pages[DOCS / "exit-codes.md"]
    assert "| 1000 |" in pages[DOCS / "performance.md"] or "No benchmark results" in pages[DOCS / "performance.md"]


QUICKSTART = [
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/reconcile --sandbox plan && "
    ".venv/bin/reconcile --sandbox apply --auto-approve",
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest",
]


def test_readme_is_short_keeps_the_quickstart_and_links_into_the_docs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200, "the README is a front page: details go to docs/"
    for command in QUICKSTART:
        assert f"\n{command}\n" in text
    links = [t for t in re.findall(r"\]\(([^)\s#]+)", FENCE.sub("", text)) if not re.match(r"[a-z]+:", t)]
    assert any(link.startswith("docs/") for link in links)
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_the_generator_finds_and_fixes_stale_pages(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    for page in ("exit-codes.md", "performance.md"):
        name = "exit-codes" if page == "exit-codes.md" else "benchmarks"
        (tmp_path / "docs" / page).write_text(f"# {page}\n\nkept\n<!-- generated:{name} -->\nold\n"
                                              f"<!-- /generated:{name} -->\nkept too\n")
    assert len(stale(tmp_path)) == 7  # five pages missing, two regions out of date
    write(tmp_path)
    assert stale(tmp_path) == []
    exit_codes = (tmp_path / "docs" / "exit-codes.md").read_text()
    assert exit_codes.startswith("# exit-codes.md\n\nkept\n") and exit_codes.endswith("kept too\n")
    assert "| **3** |" in exit_codes and "old" not in exit_codes
    assert "No benchmark results" in (tmp_path / "docs" / "performance.md").read_text()
    cli_page = tmp_path / "docs" / "reference" / "cli.md"
    cli_page.write_text(cli_page.read_text().replace("--auto-approve", "--yes"))
    assert stale(tmp_path) == [cli_page]
    (tmp_path / "docs" / "exit-codes.md").write_text("# no markers\n")
    with pytest.raises(ValueError, match="generated:exit-codes"):
        generate(tmp_path)
