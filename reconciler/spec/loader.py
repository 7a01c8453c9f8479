"""Spec files -> validated specs, with every problem located at file:line.

Pipeline per file (see docs/specs.md):

1. read ``*.yaml``/``*.yml`` under ``specs_dir`` (or the given paths; hidden files skipped);
2. render it with jinja2 (``templating``), keeping a rendered->source line map;
3. parse every YAML document (``yamlsource``); a document is one enrollment (a mapping) or a
   list of enrollments, and a file may hold several ``---`` documents;
4. deep-merge reconcile.yaml ``defaults`` under each enrollment (the spec wins; keys that only
   the other enrollment type has are skipped), then ``publishers.<publisher>`` under
   ``validation.<publisher>`` for DV, then ``default_contract``;
5. validate with the model for ``type``; then per-spec and cross-spec rules (``validate``).

Nothing stops at the first problem: ``check_specs`` returns every issue, ``load_specs`` raises
one ``SpecError`` carrying all errors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.config import Config
from reconciler.errors import SpecError, SpecIssue
from reconciler.spec.findings import NOTICE_WAITING, Finding
from reconciler.spec.hints import closest, describe_validation_error
from reconciler.spec.models import SPEC_TYPES, DvEnrollmentSpec, ThirdPartyEnrollmentSpec, spec_class_for
from reconciler.spec.templating import TemplateProblem, line_map, render
from reconciler.spec.validate import RepoEntry, check_repo, check_spec
from reconciler.spec.yamlsource import (
    Mark,
    MarkedDict,
    MarkedList,
    Path_,
    YamlProblem,
    load_documents,
    lookup,
    read_source,
    shorten,
)

__all__ = ["LoadedSpec", "LoadedSpecs", "SpecReport", "check_specs", "format_path", "load_specs", "spec_hash"]

AnySpec = DvEnrollmentSpec | ThirdPartyEnrollmentSpec
SUFFIXES = (".yaml", ".yml")
MAX_ERRORS_PER_FILE = 100
_APPROX = " (line approximate: the template changes the line count)"


def format_path(path: Iterable[str | int]) -> str:
    """("sans", 3) -> "sans[3]"; ("admin_contact", "email") -> "admin_contact.email"."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def spec_hash(spec: AnySpec) -> str:
    """sha256 over the canonical JSON of the whole spec (tool-only fields included)."""
    blob = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoadedSpec:
    """One validated enrollment spec and where it was written."""

    spec: AnySpec
    file: str  # display path, relative to the repository root when inside it
    line: int
    spec_hash: str
    path: Path = field(compare=False)
    waiting: tuple[str, ...] = ()  # key types (rsa/ecdsa) whose certificate files are not ready
    source: Any = field(default=None, repr=False, compare=False)  # merged data with line marks

    @property
    def name(self) -> str:
        return self.spec.name

    def locate(self, path: Path_) -> tuple[str, int]:
        """(file, line) of a field path such as ("sans", 3); falls back to the spec's own line."""
        mark = lookup(self.source, path) if self.source is not None else None
        return (mark.file, mark.line) if mark else (self.file, self.line)


@dataclass(frozen=True)
class LoadedSpecs:
    """Every spec of the repository, all valid; ``notices`` holds warnings and infos."""

    specs: list[LoadedSpec]
    notices: list[SpecIssue] = field(default_factory=list)

    def by_name(self) -> dict[str, LoadedSpec]:
        return {s.name: s for s in self.specs}


@dataclass(frozen=True)
class SpecReport:
    """What ``check_specs`` found: specs that built, and issues of every severity."""

    specs: list[LoadedSpec]
    issues: list[SpecIssue]
    files: int
    invalid: frozenset[int] = frozenset()  # indices into specs that some rule rejected
    hidden_errors: dict[str, int] = field(default_factory=dict)
    """Errors left out of ``issues`` by file (each file then has one line saying how many)."""

    @property
    def ok(self) -> list[LoadedSpec]:
        """Specs that passed every rule."""
        return [s for i, s in enumerate(self.specs) if i not in self.invalid]

    @property
    def errors(self) -> list[SpecIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def error_count(self) -> int:
        """Every error found, shown or not (the "N more" lines are not errors themselves)."""
        return len(self.errors) - len(self.hidden_errors) + sum(self.hidden_errors.values())

    @property
    def notices(self) -> list[SpecIssue]:
        return [i for i in self.issues if i.severity != "error"]

    @property
    def waiting(self) -> list[LoadedSpec]:
        """Valid specs whose certificate files are not ready yet."""
        return [s for s in self.ok if s.waiting]


def _issue(mark: Mark | None, fallback: str, path: Path_, message: str, severity: str = "error") -> SpecIssue:
    if mark is None:
        return SpecIssue(fallback, None, format_path(path), message, severity)
    note = _APPROX if mark.approximate else ""
    return SpecIssue(mark.file, mark.line, format_path(path), message + note, severity)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _escapes(found: Path, walked: Path, config: Config) -> SpecIssue | None:
    """A spec file met while walking a directory must not be a symlink leading out of the repository:
    reviewers of the repository would see the link, never the spec it points to."""
    try:
        target = found.resolve(strict=True)
    except (OSError, RuntimeError):
        return SpecIssue(config.relative(found.parent) + "/" + found.name, None, "",
                         "is a broken or looping symlink")
    if _inside(target, config.root) or _inside(target, walked.resolve()):
        return None
    shown = config.relative(found.parent) + "/" + found.name
    return SpecIssue(shown, None, "", f"is a symlink to {target}, outside the repository; specs must live in it")


def _discover(config: Config, paths: list[Path] | None) -> tuple[list[Path], list[SpecIssue]]:
    roots = paths if paths else [config.specs_dir]
    files: list[Path] = []
    issues: list[SpecIssue] = []
    for given in roots:
        path = given if given.is_absolute() else Path.cwd() / given
        if path.is_dir():
            found = []
            for p in path.rglob("*"):
                if p.suffix not in SUFFIXES or any(part.startswith(".") for part in p.relative_to(path).parts):
                    continue
                problem = _escapes(p, path, config) if p.is_symlink() else None
                if problem is not None:
                    issues.append(problem)
                elif p.is_file():
                    found.append(p)
            files.extend(sorted(found))
        elif path.is_file():
            files.append(path)
        else:
            what = "specs directory (specs_dir)" if not paths else "path"
            searched = config.searched() if not paths else None
            hint = f" ({searched}: run from the repository, or pass --config)" if searched else ""
            issues.append(SpecIssue(config.relative(path), None, "", f"no such {what}{hint}"))
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, issues


def _merge(base: Any, over: Any) -> Any:
    """Deep-merge mappings (``over`` wins); lists and scalars are replaced. Keeps line marks."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return over
    result = MarkedDict()
    mark = getattr(over, "mark", None) or getattr(base, "mark", None)
    if mark is not None:
        result.mark = mark
    result.key_marks = {}
    for source in (base, over):
        marks = getattr(source, "key_marks", {})
        for key, value in source.items():
            result[key] = _merge(result[key], value) if source is over and key in result else value
            if key in marks:
                result.key_marks[key] = marks[key]
    return result


def _type_specific() -> dict[str, set[str]]:
    """Per type: the fields only other types have (their defaults are not merged into it)."""
    fields = {name: set(cls.model_fields) for name, cls in SPEC_TYPES.items()}
    return {name: set.union(*fields.values()) - own for name, own in fields.items()}


_OTHER_TYPES_FIELDS = _type_specific()


def _prepare(raw: MarkedDict, config: Config) -> Any:
    """Defaults, publisher settings and the default contract merged under ``raw``."""
    defaults = config.marked("defaults") or {}
    kind = raw.get("type", defaults.get("type"))
    if isinstance(kind, str) and kind in _OTHER_TYPES_FIELDS and isinstance(defaults, dict):
        skip = _OTHER_TYPES_FIELDS[kind]
        filtered = MarkedDict({k: v for k, v in defaults.items() if k not in skip})
        filtered.key_marks = {k: m for k, m in getattr(defaults, "key_marks", {}).items() if k not in skip}
        defaults = filtered
    merged = _merge(defaults, raw)
    validation = merged.get("validation")
    if kind == "dv" and isinstance(validation, dict) and isinstance(validation.get("publisher"), str):
        publisher = validation["publisher"]
        publishers = config.marked("publishers") or {}
        if isinstance(publishers.get(publisher), dict):
            base = MarkedDict({publisher: publishers[publisher]})
            base.key_marks = {k: m for k, m in getattr(publishers, "key_marks", {}).items() if k == publisher}
            merged["validation"] = _merge(base, validation)
    if merged.get("contract_id") is None and config.default_contract:
        merged["contract_id"] = config.default_contract
    return merged


def _build(raw: MarkedDict, config: Config, display: str) -> tuple[AnySpec | None, Any, list[SpecIssue]]:
    merged = _prepare(raw, config)
    cls = spec_class_for(merged.get("type"))
    if cls is None:
        kind = merged.get("type")
        options = list(SPEC_TYPES)
        if kind is None:
            message = f"required field is missing ({' or '.join(options)})"
        else:
            match = closest(kind, options) if isinstance(kind, str) else None
            message = (f"{shorten(repr(kind), 120)} is not one of: {', '.join(options)}"
                       + (f"; did you mean {match!r}?" if match else ""))
        return None, merged, [_issue(lookup(merged, ("type",)), display, ("type",), message)]
    try:
        return cls.model_validate(merged), merged, []
    except ValidationError as exc:
        issues = [_issue(lookup(merged, loc), display, loc, message)
                  for loc, message in describe_validation_error(exc, cls)]
        return None, merged, issues


def _documents(path: Path, display: str, config: Config) -> tuple[list[MarkedDict], list[SpecIssue]]:
    try:
        text = read_source(path)
    except YamlProblem as exc:
        return [], [SpecIssue(display, exc.line, "", exc.message)]
    try:
        rendered = render(text, display, config.variables)
    except TemplateProblem as exc:
        return [], [SpecIssue(display, exc.line, "", exc.message, column=exc.column)]
    try:
        docs = load_documents(rendered, display, line_map(text, rendered, display, config.variables))
    except YamlProblem as exc:
        return [], [SpecIssue(display, exc.line, "", exc.message)]
    items: list[MarkedDict] = []
    issues: list[SpecIssue] = []
    for data, line in docs:
        candidates = list(zip(data, data.item_marks, strict=True)) if isinstance(data, MarkedList) else [
            (data, Mark(display, line))]
        for item, mark in candidates:
            if isinstance(item, MarkedDict):
                items.append(item)
            else:
                issues.append(_issue(mark, display, (), "expected an enrollment (a mapping of fields) or a list of "
                                     f"enrollments, got {type(item).__name__ if item is not None else 'nothing'}"))
    return items, issues


def _located(finding: Finding, loaded: LoadedSpec) -> SpecIssue:
    mark = lookup(loaded.source, finding.path)
    return _issue(mark or Mark(loaded.file, loaded.line), loaded.file, finding.path, finding.message, finding.severity)


def _field_lines(loaded: LoadedSpec, names: tuple[str, ...]) -> dict[str, str]:
    """"file:line" of each top-level field written in the spec (not one filled from defaults)."""
    found = {}
    for name in names:
        mark = lookup(loaded.source, (name,)) if isinstance(loaded.source, dict) and name in loaded.source else None
        if mark is not None:
            found[name] = f"{mark.file}:{mark.line}"
    return found


Uploaded = Mapping[str, Collection[str]]
"""Spec name -> fingerprints of the certificates state records as uploaded (see ``check_spec``)."""


def check_specs(config: Config, paths: list[Path] | None = None, uploaded: Uploaded | None = None) -> SpecReport:
    """Load, render, parse and validate every spec; never raises for problems in specs."""
    files, issues = _discover(config, paths)
    built: list[LoadedSpec] = []
    for path in files:
        display = config.relative(path)
        items, file_issues = _documents(path, display, config)
        issues.extend(file_issues)
        for raw in items:
            spec, merged, spec_issues = _build(raw, config, display)
            issues.extend(spec_issues)
            if spec is not None:
                line = raw.mark.line
                built.append(LoadedSpec(spec, display, line, spec_hash(spec), path, source=merged))
    results: list[LoadedSpec] = []
    invalid: set[int] = set()
    for index, loaded in enumerate(built):
        findings = check_spec(loaded.spec, config.root, (uploaded or {}).get(loaded.spec.name, ()),
                              config.state_path.parent)
        issues.extend(_located(f, loaded) for f in findings)
        if any(f.severity == "error" for f in findings):
            invalid.add(index)
        waiting = tuple(dict.fromkeys(
            str(f.path[1]) for f in findings if f.severity == "info" and f.message.startswith(NOTICE_WAITING)))
        results.append(LoadedSpec(loaded.spec, loaded.file, loaded.line, loaded.spec_hash, loaded.path,
                                  waiting, loaded.source))
    entries = [RepoEntry(s.spec, f"{s.file}:{s.line}", _field_lines(s, ("name", "common_name"))) for s in results]
    for i, finding in check_repo(entries):
        issues.append(_located(finding, results[i]))
        invalid.add(i)
    unique = list(dict.fromkeys(issues))
    file_rank = {config.relative(p): n for n, p in enumerate(files)}
    unique.sort(key=lambda i: (file_rank.get(i.file, -1), i.line or 0))
    shown, hidden = _capped(unique)
    return SpecReport(results, shown, len(files), frozenset(invalid), hidden)


def _capped(issues: list[SpecIssue]) -> tuple[list[SpecIssue], dict[str, int]]:
    """At most ``MAX_ERRORS_PER_FILE`` errors per file, then one line saying how many more there are:
    a generated file can hold thousands of the same mistake, and nobody reads past the first page."""
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    kept: list[SpecIssue] = []
    for issue in issues:
        if issue.severity == "error":
            if shown.get(issue.file, 0) >= MAX_ERRORS_PER_FILE:
                hidden[issue.file] = hidden.get(issue.file, 0) + 1
                continue
            shown[issue.file] = shown.get(issue.file, 0) + 1
        kept.append(issue)
    for file, count in hidden.items():
        kept.append(SpecIssue(file, None, "", f"{count} more errors in this file are not shown; fix these first"))
    return kept, hidden


def load_specs(config: Config, paths: list[Path] | None = None, uploaded: Uploaded | None = None) -> LoadedSpecs:
    """Every spec, validated; raises ``SpecError`` listing every error (not only the first)."""
    report = check_specs(config, paths, uploaded)
    if report.errors:
        raise SpecError(report.errors)
    return LoadedSpecs(report.specs, report.notices)
