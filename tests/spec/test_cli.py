"""`reconcile validate` and `reconcile schema` through click, offline.

The malformed corpus lives in tests/fixtures/specs/malformed/: each file's first line is
``# expect: LINE: fragment``, the line the error must name and a fragment of its message.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "specs"
CONFIG = FIXTURES / "reconcile.yaml"
CORPUS = sorted((FIXTURES / "malformed").glob("*.yaml"))


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test: validate is offline."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _expectation(path: Path) -> tuple[int, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} lacks its '# expect: LINE: fragment' header"
    line, fragment = first.removeprefix("# expect: ").split(": ", 1)
    return int(line), fragment


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(CONFIG), *args])


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 51  # the committed corpus; tests/reliability/test_bad_input.py adds generated cases


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_each_malformed_spec_fails_naming_file_and_line(path: Path) -> None:
    line, fragment = _expectation(path)
    result = _run("validate", str(path))
    assert result.exit_code == 1, result.output
    where = f"malformed/{path.name}:{line}: "
    matching = [out for out in result.output.splitlines() if out.startswith(where) and fragment in out]
    assert matching, f"expected a line starting {where!r} containing {fragment!r}, got:\n{result.output}"


def test_whole_corpus_reports_every_file_at_once() -> None:
    result = _run("validate", str(FIXTURES / "malformed"))
    assert result.exit_code == 1
    for path in CORPUS:
        line, fragment = _expectation(path)
        assert f"malformed/{path.name}:{line}: " in result.output, path.name
    assert f"in {len(CORPUS)} files" in result.output.splitlines()[-1]


def test_valid_fixture_specs_exit_zero_with_summary() -> None:
    result = _run("validate")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "2 specs OK, 1 waiting for certificate"
    assert "note: valid/shop.yaml:6: certificates.rsa.certificate: waiting for certificate" in result.output


def test_repository_examples_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 0, result.output
    # "1 waiting for certificate" too, unless the sandbox demo has already signed the shop certificates
    assert result.output.splitlines()[-1].startswith("4 specs OK")


def test_json_format() -> None:
    result = _run("validate", "--format", "json", str(FIXTURES / "malformed" / "bad-email.yaml"))
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["valid"] is False and data["files"] == 1
    assert data["issues"][0] == {"severity": "error", "file": "malformed/bad-email.yaml", "line": 7,
                                 "column": None, "field": "admin_contact.email",
                                 "message": "'ada.example.com' is not a valid email address "
                                            "(An email address must have an @-sign)"}


def test_missing_path_is_an_error() -> None:
    result = _run("validate", str(FIXTURES / "nope.yaml"))
    assert result.exit_code == 1 and "no such path" in result.output


def test_bad_config_is_an_error_with_line(tmp_path: Path) -> None:
    config = tmp_path / "reconcile.yaml"
    config.write_text("specs_dir: specs\nparalelism: 3\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "validate"])
    assert result.exit_code == 1
    assert "reconcile.yaml:2: paralelism: unknown field 'paralelism'; did you mean 'parallelism'?" in result.output


def test_schema_describes_specs_and_validates_examples() -> None:
    import yaml

    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in (REPO / "specs").glob("*.yaml"):
        text = path.read_text()
        if "{%" in text or "{{" in text:
            continue  # templates are checked after rendering, by validate
        assert list(validator.iter_errors(yaml.safe_load(text))) == [], path
    assert list(validator.iter_errors({"name": "x", "type": "dv", "common_name": "a.example.com", "sni_onyl": 1}))
    # defaults documented in descriptions flow into the schema
    dv = schema["$defs"]["DvEnrollmentSpec"]["properties"]
    assert dv["sni_only"]["default"] is True and "Default: true" in dv["sni_only"]["description"]


def test_config_schema_validates_the_example_config() -> None:
    import yaml

    result = CliRunner().invoke(cli, ["schema", "--kind", "config"])
    schema = json.loads(result.output)
    assert "root" not in schema["properties"]
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(
        yaml.safe_load((REPO / "reconcile.yaml").read_text()))) == []


@pytest.mark.parametrize("kind,name", [("spec", "reconcile-spec.schema.json"),
                                       ("config", "reconcile-config.schema.json")])
def test_committed_schemas_are_current(kind: str, name: str) -> None:
    result = CliRunner().invoke(cli, ["schema", "--kind", kind])
    assert result.output == (REPO / name).read_text(), f"regenerate: reconcile schema --kind {kind} > {name}"


def test_schema_out_file(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    result = CliRunner().invoke(cli, ["schema", "--out", str(out)])
    assert result.exit_code == 0 and json.loads(out.read_text())["title"] == "cps-reconciler enrollment spec"
