from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import Config, load_config
from reconciler.errors import ConfigError


def test_missing_file_gives_defaults_rooted_at_cwd(tmp_path: Path) -> None:
    config = load_config(cwd=tmp_path)
    assert config.root == tmp_path.resolve() and config.file is None
    assert config.specs_dir == tmp_path.resolve() / "specs"
    assert config.state_path == tmp_path.resolve() / "state" / "reconcile-state.json"
    assert config.parallelism == 10 and config.safety.max_delete_fraction == 0.3
    assert config.defaults == {} and config.default_contract is None


def test_explicit_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.yaml")


def test_reads_file_and_resolves_paths_against_its_directory(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "reconcile.yaml").write_text(
        "default_contract: ctr_1-SANDBOX\nspecs_dir: enrollments\nstate_path: st/s.json\nedgerc: creds/.edgerc\n"
        "ca_bundle: ca.pem\nparallelism: 4\nsafety: {max_update_fraction: 0.5, min_managed: 3}\n"
        "variables: {domain: example.com}\ndefaults: {geography: core}\npublishers: {hook: {timeout: 5}}\n"
    )
    config = load_config(repo / "reconcile.yaml", cwd=tmp_path)
    assert config.root == repo.resolve()
    assert config.specs_dir == repo.resolve() / "enrollments"
    assert config.state_path == repo.resolve() / "st" / "s.json"
    assert config.edgerc == repo.resolve() / "creds" / ".edgerc"
    assert config.ca_bundle == repo.resolve() / "ca.pem"
    assert config.safety.max_update_fraction == 0.5 and config.safety.min_managed == 3
    assert config.variables == {"domain": "example.com"}
    assert config.publishers.hook == {"timeout": 5}
    # the marked copy keeps line numbers for errors in merged defaults
    assert config.marked("defaults").key_marks["geography"].line == 9


def test_found_in_cwd(tmp_path: Path) -> None:
    (tmp_path / "reconcile.yaml").write_text("default_contract: ctr_9\n")
    assert load_config(cwd=tmp_path).default_contract == "ctr_9"


@pytest.mark.parametrize("text,fragment", [
    ("parallelism: 0\n", "reconcile.yaml:1: parallelism:"),
    ("safety:\n  max_updat_fraction: 0.5\n", "reconcile.yaml:2: safety.max_updat_fraction: unknown field"),
    ("specs_dri: x\n", "did you mean 'specs_dir'?"),
    ("a: 1\na: 2\n", "reconcile.yaml:2: duplicate key 'a'"),
    ("- 1\n", "must be a mapping"),
    ("root: /etc\n", "implied by the file's location"),
    ("x: [\n", "reconcile.yaml:2:"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "reconcile.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path)
    assert fragment in str(info.value)


def test_config_constructed_directly_has_absolute_paths(tmp_path: Path) -> None:
    config = Config(root=tmp_path)
    assert config.specs_dir.is_absolute() and config.relative(tmp_path / "specs" / "a.yaml") == "specs/a.yaml"


def test_found_in_a_parent_like_git_finds_dot_git(tmp_path: Path) -> None:
    (tmp_path / "reconcile.yaml").write_text("default_contract: ctr_9\nspecs_dir: enrollments\n")
    deep = tmp_path / "enrollments" / "team-a"
    deep.mkdir(parents=True)
    config = load_config(cwd=deep)
    assert config.file == tmp_path.resolve() / "reconcile.yaml" and config.root == tmp_path.resolve()
    assert config.specs_dir == tmp_path.resolve() / "enrollments" and config.searched() is None


def test_the_search_stops_at_the_git_repository_root(tmp_path: Path) -> None:
    (tmp_path / "reconcile.yaml").write_text("default_contract: ctr_outside\n")  # not this repository's
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "sub").mkdir()
    config = load_config(cwd=repo / "sub")
    assert config.file is None and config.root == (repo / "sub").resolve() and config.default_contract is None
    assert config.searched() == f"no reconcile.yaml in {(repo / 'sub').resolve()} or a parent up to {repo.resolve()}"


def test_without_a_config_the_missing_specs_error_says_where_it_looked(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from reconciler.cli.main import cli

    (tmp_path / ".git").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 1
    assert (f"no such specs directory (specs_dir) (no reconcile.yaml in {(tmp_path / 'elsewhere').resolve()} "
            f"or a parent up to {tmp_path.resolve()}: run from the repository, or pass --config)") in result.stdout


def test_a_command_run_in_a_subdirectory_uses_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from reconciler.cli.main import cli

    (tmp_path / "reconcile.yaml").write_text("default_contract: ctr_1-X\n")
    (tmp_path / "specs" / "team").mkdir(parents=True)
    (tmp_path / "specs" / "team" / "www.yaml").write_text("name: www\ntype: dv\ncommon_name: www.example.com\n"
                                                          "admin_contact: {first_name: A, last_name: B, "
                                                          "email: a@example.com, phone: '+1-555-0100'}\n")
    monkeypatch.chdir(tmp_path / "specs" / "team")
    result = CliRunner().invoke(cli, ["validate", "--format", "json"])
    assert '"file": "specs/team/www.yaml"' in result.stdout, result.output
