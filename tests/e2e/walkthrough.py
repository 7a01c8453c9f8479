"""Run a Markdown walkthrough exactly as written (the README's, docs/migrate-from-terraform.md's).

Convention (each document states it too), applied to the section whose heading starts with the
given ``## Heading`` up to the next ``## `` heading, block by block in order:

- a ```` ```bash ```` block is commands: each line that is not blank or a comment is one
  command (a line ending in ``\\`` continues on the next), run by ``bash`` in the directory the
  previous command left (so ``cd`` carries over). It must exit 0, or N when the line ends with
  the comment ``# exits N``.
- a ```` ```yaml ```` block whose first line is ``# file: PATH`` is written verbatim to PATH.
- other blocks (``text`` output samples, ``hcl`` excerpts) are not run.

Commands run with this interpreter's bin directory first on PATH (where ``reconcile`` is
installed) and without RECONCILE_*/AKAMAI_* variables from the test environment; a caller adds
the ones its document's setting needs (``extra_env``). If the document drifts from the product,
a command fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
EXITS = re.compile(r"#\s*exits\s+(\d+)\b")


@dataclass(frozen=True)
class Step:
    """One command to run (``command``, ``exits``) or one file to write (``path``, ``content``)."""

    command: str = ""
    exits: int = 0
    path: str = ""
    content: str = ""


def section(text: str, heading: str) -> str:
    """The body of the ``## {heading}...`` section."""
    start = re.search(rf"^## {re.escape(heading)}\b.*$", text, re.MULTILINE)
    assert start, f"no '## {heading}' section"
    end = re.search(r"^## ", text[start.end():], re.MULTILINE)
    return text[start.end(): start.end() + end.start() if end else len(text)]


def steps(body: str) -> list[Step]:
    found: list[Step] = []
    for match in FENCE.finditer(body):
        language, block = match.group(1), match.group(2)
        if language == "bash":
            pending = ""
            for line in block.splitlines():
                if pending:
                    line, pending = pending + "\n" + line, ""
                if line.rstrip().endswith("\\"):
                    pending = line
                    continue
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                exits = EXITS.search(line)
                found.append(Step(command=line, exits=int(exits.group(1)) if exits else 0))
            assert not pending, f"a command ends in a line continuation: {pending!r}"
        elif language == "yaml" and block.startswith("# file: "):
            first, _, rest = block.partition("\n")
            found.append(Step(path=first.removeprefix("# file: ").strip(), content=first + "\n" + rest))
    return found


def clean_env(extra_env: Mapping[str, str] | None = None, path_first: list[Path] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "AKAMAI_"))}
    dirs = [*(str(p) for p in path_first or []), str(Path(sys.executable).parent)]
    env["PATH"] = os.pathsep.join([*dirs, env.get("PATH", "")])
    env.update(extra_env or {})
    return env


def run_steps(found: list[Step], cwd: Path, env: Mapping[str, str], *, name: str) -> tuple[Path, list[tuple[str, str]]]:
    """Run every step from ``cwd``; returns the final directory and (command, stdout) per command."""
    cwd_file = cwd.parent / f"{cwd.name}.cwd"
    outputs: list[tuple[str, str]] = []
    for step in found:
        if step.path:
            target = cwd / step.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(step.content, encoding="utf-8")
            continue
        script = f'{step.command}\nrc=$?\npwd > "{cwd_file}"\nexit $rc\n'
        done = subprocess.run(["bash", "-c", script], cwd=cwd, env=dict(env), capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == step.exits, (
            f"{name} command {step.command!r} exited {done.returncode}, expected {step.exits}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        cwd = Path(cwd_file.read_text().strip())
        outputs.append((step.command, done.stdout))
    return cwd, outputs
