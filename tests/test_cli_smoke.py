from click.testing import CliRunner

from reconciler.cli.main import cli


def test_help_lists_global_flags() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for flag in ("--config", "--edgerc", "--section", "--account-switch-key", "--sandbox", "--no-color"):
        assert flag in result.output
