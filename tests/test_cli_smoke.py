import re

from click.testing import CliRunner

from reconciler.cli.main import cli


def test_help_lists_global_flags() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for flag in ("--config", "--edgerc", "--section", "--account-switch-key", "--sandbox", "--no-color"):
        assert flag in result.output


def test_the_examples_in_help_use_real_commands_and_flags() -> None:
    output = CliRunner().invoke(cli, ["--help"]).output
    examples = [re.split(r"\s{2,}", line.strip())[0].split()[1:] for line in output.splitlines()
                if line.strip().startswith("reconcile ")]
    assert len(examples) >= 5 and "Exit codes: 0" in output
    global_flags = {opt for param in cli.params for opt in param.opts}
    for words in examples:
        command = next(w for w in words if not w.startswith("-"))
        assert command in cli.commands, words
        known = global_flags | {opt for param in cli.commands[command].params
                                for opt in (*param.opts, *param.secondary_opts)}
        assert all(w in known for w in words if w.startswith("-")), words
