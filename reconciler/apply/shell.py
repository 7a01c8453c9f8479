"""Run a user's shell command (publisher or signer hook) with a timeout and extra environment."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import PublisherError
from reconciler.secretenv import child_environment

_TAIL = 800  # characters of output quoted in an error: enough to see why, not a log dump


@dataclass(frozen=True)
class ShellResult:
    """Exit status and captured output of a finished hook command."""

    returncode: int
    stdout: str
    stderr: str


async def run_shell(command: str, *, env: Mapping[str, str], cwd: Path, timeout: float,
                    what: str) -> ShellResult:
    """Run ``command`` through /bin/sh in ``cwd`` with ``env`` added to ours.

    Raises PublisherError naming ``what`` when it cannot start, times out (its whole process
    group is killed) or exits non-zero.
    """
    full_env = {**child_environment(), **env}  # without secrets of ours (the state DSN)
    # Hooks such as `reconcile sandbox-sign` must find this installation's scripts even when
    # its virtualenv is not activated, so its bin directory comes first on PATH.
    bin_dir = str(Path(sys.executable).parent)
    full_env["PATH"] = os.pathsep.join([bin_dir, full_env.get("PATH", "")]).rstrip(os.pathsep)
    try:
        process = await asyncio.create_subprocess_shell(
            command, cwd=str(cwd), env=full_env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
    except OSError as exc:
        raise PublisherError(f"{what}: cannot start hook command: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except TimeoutError:
        _kill_group(process)
        await process.wait()
        raise PublisherError(f"{what}: hook command timed out after {timeout:g}s") from None
    except BaseException:
        # Cancelled (another enrollment failed, Ctrl-C): leave no orphan hooks behind.
        _kill_group(process)
        raise
    result = ShellResult(process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip())[-_TAIL:]
        suffix = f": {tail}" if tail else ""
        raise PublisherError(f"{what}: hook command exited with status {result.returncode}{suffix}")
    return result


def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
