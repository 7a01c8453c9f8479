"""Issue 8, bad input: every malformed repository is refused before anything reaches CPS.

Each case (tests/reliability/badinput_cases.py plus the committed corpus in
tests/fixtures/specs/malformed/) is built as its own repository whose reconcile.yaml points at a
real sandbox served over HTTPS with real EdgeGrid credentials. The real CLI runs ``plan``,
``apply --auto-approve``, ``status`` and ``validate`` in it; each must exit 1 with a one-line-per-issue error
naming the file and line (and field), no traceback, no line longer than ``MAX_LINE``, and the
sandbox's request log must stay empty. A socket spy also records any connection attempt.
A positive control shows the same wiring does reach the sandbox when the specs are good, so an
empty log is not vacuous.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from reconciler.sandbox.engine_config import EngineConfig
from reconciler.sandbox.testing import SandboxServer
from tests.reliability.badinput_cases import CASES, REQUIRED_CATEGORIES, Case, base_config, dv, fixture_cases
from tests.reliability.badinput_pki import Pki

ALL = CASES + fixture_cases()
COMMANDS = (("plan",), ("apply", "--auto-approve"), ("status",), ("validate",))
MAX_LINE = 1000  # a refusal is read by a person: a huge value must not be echoed whole


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(engine=EngineConfig(validation_policy="trust-ack")) as running:
        yield running


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


class _ConnectSpy:
    """Replaces socket connects for the duration of a refused run; records instead of connecting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[Any] = []
        self._monkeypatch = monkeypatch

    def __enter__(self) -> _ConnectSpy:
        def refuse(*args: Any, **kwargs: Any) -> None:
            self.attempts.append(args[1:] or kwargs)
            raise ConnectionRefusedError("bad-input test: no connection may be attempted")

        self._monkeypatch.setattr(socket.socket, "connect", refuse)
        self._monkeypatch.setattr(socket.socket, "connect_ex", refuse)
        self._monkeypatch.setattr(socket, "create_connection", refuse)
        return self

    def __exit__(self, *exc: object) -> None:
        self._monkeypatch.undo()


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["--no-color", *args])


def _project(tmp_path: Path, case: Case, server: SandboxServer, pki: Pki) -> Path:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    case.build(root, outside, pki, str(server.edgerc), server.ca_bundle)
    return root


def _expected_prefix(case: Case) -> str:
    where = f"{case.file}:{case.line}: " if case.line is not None else f"{case.file}: "
    return where + (f"{case.field}: " if case.field else "")


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_bad_input_is_refused_with_file_and_line_and_no_api_call(
        case: Case, tmp_path: Path, server: SandboxServer, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path, case, server, pki)
    monkeypatch.chdir(root)
    server.clear_requests()
    prefix = _expected_prefix(case)
    for command in COMMANDS:
        with _ConnectSpy(pytest.MonkeyPatch()) as spy:
            result = _run(*command)
        name = " ".join(command)
        assert isinstance(result.exception, SystemExit) and result.exit_code == 1, (
            f"{name}: exit {result.exit_code}, {result.exception!r}\n{result.output}")
        assert "Traceback" not in result.output, f"{name}:\n{result.output}"
        lines = [line.removeprefix("Error: ") for line in result.output.splitlines()]
        assert any(line.startswith(prefix) and case.fragment in line for line in lines), (
            f"{name}: expected a line starting {prefix!r} containing {case.fragment!r}, got:\n{result.output[:3000]}")
        assert max(map(len, lines)) <= MAX_LINE, f"{name}: a line of {max(map(len, lines))} characters"
        assert spy.attempts == [], f"{name} tried to connect: {spy.attempts}"
    assert server.requests() == [], "a refused run reached the sandbox"


def test_positive_control_reaches_the_sandbox(tmp_path: Path, server: SandboxServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The same wiring with a good spec does call CPS, so the empty logs above mean something.
    A UTF-8 byte-order mark is accepted (editors on Windows write one)."""
    root = tmp_path / "repo"
    (root / "malformed").mkdir(parents=True)
    (root / "reconcile.yaml").write_bytes(base_config(str(server.edgerc), server.ca_bundle))
    (root / "malformed" / "good.yaml").write_bytes(b"\xef\xbb\xbf" + dv("good", "sans: [WWW.good.example.com]")
                                                   .encode())
    monkeypatch.chdir(root)
    server.clear_requests()
    result = _run("plan")
    assert result.exit_code == 0, result.output
    assert "+ good: create" in result.output
    assert [r["path"] for r in server.requests()][:1] == ["/cps/v2/enrollments"]


def test_symlinks_inside_the_repository_are_fine(tmp_path: Path, server: SandboxServer, pki: Pki,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy refuses paths that resolve outside the root, not symlinks as such."""
    from tests.reliability.badinput_cases import certs, tp

    case = Case("inside-link", "", None, "", spec=tp("inside-link", "current/rsa.pem", "current/rsa-chain.pem"),
                extra=certs("inside-link"))
    root = _project(tmp_path, case, server, pki)
    (root / "current").symlink_to(root / "certs" / "inside-link")
    monkeypatch.chdir(root)
    result = _run("validate")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "1 spec OK"


def test_corpus_covers_every_category_of_the_issue(capsys: pytest.CaptureFixture[str]) -> None:
    counts = Counter(c.category for c in ALL)
    assert len(ALL) >= 60 and len({c.name for c in ALL}) == len(ALL)
    missing = [c for c in REQUIRED_CATEGORIES if counts[c] == 0]
    assert not missing, f"no case for {missing}"
    with capsys.disabled():
        print(f"\nbad-input corpus: {len(ALL)} cases")  # noqa: T201 - the count docs/reliability.md quotes
        for category, count in counts.most_common():
            print(f"  {count:3d}  {category}")  # noqa: T201
