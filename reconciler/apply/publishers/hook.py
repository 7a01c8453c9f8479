"""The hook publisher: a user command publishes each challenge, another removes it.

Like certbot's ``--manual-auth-hook``/``--manual-cleanup-hook``: the ``publish`` command runs
once per challenge through the shell, with the config root as working directory and these
environment variables (all strings, empty when not applicable):

    RECONCILE_ENROLLMENT      spec name of the enrollment
    RECONCILE_DOMAIN          domain being validated (www.example.com)
    RECONCILE_CHALLENGE_TYPE  dns-01 | http-01
    RECONCILE_RECORD_NAME     dns-01 owner name with trailing dot (_acme-challenge.www.example.com.)
    RECONCILE_RECORD_VALUE    dns-01 TXT value
    RECONCILE_TOKEN           ACME token
    RECONCILE_PATH            http-01 URL the CA fetches (http://www.example.com/.well-known/...)
    RECONCILE_RESPONSE_BODY   http-01 body to serve there (also set for dns-01: the TXT value)

A non-zero exit status or a timeout fails the enrollment with the command's last output. The
optional ``cleanup`` command runs the same way once CPS has validated the domains.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from reconciler.apply.publishers.base import DNS_01, ChallengeRecord, Publisher, PublishResult
from reconciler.apply.shell import run_shell


def hook_environment(record: ChallengeRecord) -> dict[str, str]:
    """The documented environment for one challenge (see the module docstring)."""
    dns = record.type == DNS_01
    return {
        "RECONCILE_ENROLLMENT": record.enrollment,
        "RECONCILE_DOMAIN": record.domain,
        "RECONCILE_CHALLENGE_TYPE": record.type,
        "RECONCILE_RECORD_NAME": record.record_name if dns else "",
        "RECONCILE_RECORD_VALUE": record.value if dns else "",
        "RECONCILE_TOKEN": record.token,
        "RECONCILE_PATH": "" if dns else record.path,
        "RECONCILE_RESPONSE_BODY": record.value,
    }


class HookPublisher(Publisher):
    """Runs the spec's publish/cleanup shell commands once per challenge."""

    kind: ClassVar[str] = "hook"

    def __init__(self, publish: str, cleanup: str | None, cwd: Path, timeout: float = 60.0) -> None:
        self.publish_command = publish
        self.cleanup_command = cleanup
        self.cwd = cwd
        self.timeout = timeout

    async def _publish(self, records: list[ChallengeRecord]) -> PublishResult:
        for record in records:
            await run_shell(self.publish_command, env=hook_environment(record), cwd=self.cwd,
                            timeout=self.timeout, what=f"{record.enrollment}: publish {record.domain}")
        return PublishResult(ready=True, details=[f"published {len(records)} challenge(s) by hook"])

    async def _cleanup(self, records: list[ChallengeRecord]) -> None:
        if not self.cleanup_command:
            return
        for record in records:
            await run_shell(self.cleanup_command, env=hook_environment(record), cwd=self.cwd,
                            timeout=self.timeout, what=f"{record.enrollment}: cleanup {record.domain}")
