"""The README walkthrough, run exactly as written: from an empty directory to deployed certificates.

Convention (also stated in the README section itself), applied to the section whose heading
starts with ``## Walkthrough`` up to the next ``## `` heading, block by block in order:

- a ```` ```bash ```` block is commands: each line that is not blank or a comment is one
  command (a line ending in ``\\`` continues on the next), run by ``bash`` in the directory the
  previous command left (so ``cd`` carries over). It must exit 0, or N when the line ends with
  the comment ``# exits N``.
- a ```` ```yaml ```` block whose first line is ``# file: PATH`` is written verbatim to PATH.
- other blocks (``text`` output samples) are not run.

Commands run with this interpreter's bin directory first on PATH (where ``reconcile`` is
installed) and without RECONCILE_*/AKAMAI_* variables from the test environment, at the
sandbox's default speed. If the README drifts from the product, a command fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
EXITS = re.compile(r"#\s*exits\s+(\d+)\b")


@dataclass(frozen=True)
class Step:
    """One command to run (``command``, ``exits``) or one file to write (``path``, ``content``)."""

    command: str = ""
    exits: int = 0
    path: str = ""
    content: str = ""


def walkthrough_section(text: str) -> str:
    start = re.search(r"^## Walkthrough\b.*$", text, re.MULTILINE)
    assert start, "README.md has no '## Walkthrough' section"
    end = re.search(r"^## ", text[start.end():], re.MULTILINE)
    return text[start.end(): start.end() + end.start() if end else len(text)]


def steps(section: str) -> list[Step]:
    found: list[Step] = []
    for match in FENCE.finditer(section):
        language, body = match.group(1), match.group(2)
        if language == "bash":
            pending = ""
            for line in body.splitlines():
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
        elif language == "yaml" and body.startswith("# file: "):
            first, _, rest = body.partition("\n")
            found.append(Step(path=first.removeprefix("# file: ").strip(), content=first + "\n" + rest))
    return found


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "AKAMAI_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_walkthrough_is_extracted_as_documented() -> None:
    found = steps(walkthrough_section(README.read_text(encoding="utf-8")))
    files = [s.path for s in found if s.path]
    commands = [s.command for s in found if s.command]
    assert files == ["reconcile.yaml", "specs/www.yaml", "specs/shop.yaml"]
    assert commands[0].startswith("mkdir ") and any("apply" in c for c in commands)
    assert [c for c in commands if "plan --detailed-exitcode" in c][-1].endswith("plan --detailed-exitcode")
    assert commands[-1].startswith("reconcile --sandbox status")


def test_readme_walkthrough_from_an_empty_directory_deploys_a_dv_and_a_third_party_certificate(
        tmp_path: Path) -> None:
    found = steps(walkthrough_section(README.read_text(encoding="utf-8")))
    env = _env()
    cwd = tmp_path
    cwd_file = tmp_path.parent / f"{tmp_path.name}.cwd"
    outputs: list[tuple[str, str]] = []
    for step in found:
        if step.path:
            target = cwd / step.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(step.content, encoding="utf-8")
            continue
        script = f'{step.command}\nrc=$?\npwd > "{cwd_file}"\nexit $rc\n'
        done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == step.exits, (
            f"README walkthrough command {step.command!r} exited {done.returncode}, expected {step.exits}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        cwd = Path(cwd_file.read_text().strip())
        outputs.append((step.command, done.stdout))

    final_plans = [out for command, out in outputs if "plan --detailed-exitcode" in command]
    assert "No changes" in final_plans[-1]
    status = outputs[-1][1]
    rows = {line.split()[0]: line.split() for line in status.splitlines()[1:] if line.strip()}
    assert set(rows) == {"www", "shop"}, status
    for name, kind in (("www", "dv"), ("shop", "third-party")):
        row = rows[name]
        assert row[2] == kind and row[-1] == "none", status
        assert re.fullmatch(r"\d+d", row[-2]) and re.fullmatch(r"\d+d", row[-3]), status  # staging + production
    assert cwd != tmp_path and (cwd / "certs" / "shop" / "rsa.pem").is_file()
    assert "_acme-challenge.www.example.com. TXT" in (cwd / "dns" / "published.txt").read_text()
