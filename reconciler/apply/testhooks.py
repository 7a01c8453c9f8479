"""Test hook for crash-safety tests: die hard at a named step boundary.

When the environment variable ``RECONCILE_TEST_KILL_AT`` names a step boundary (``create:intent``,
``create:posted``, ``upload:posted``, ...; optionally ``NAME:`` in front to pick one enrollment,
e.g. ``www-example-com:create:posted``), the process SIGKILLs itself the first time it reaches
that boundary: no cleanup, no flush, exactly like a power cut. Only the crash-resume tests set
it; it costs one environment lookup per step otherwise.

Boundaries, in workflow order (see ``BOUNDARIES``)::

    replace:retired    a replaced enrollment moved to NAME@ID in state, its successor not created yet
    create:intent      intent recorded, POST /enrollments not sent yet
    create:posted      CPS created the enrollment, state does not know its id yet
    create:saved       enrollment id and change id saved
    update:intent      update intent recorded, PUT not sent yet
    update:posted      PUT accepted, the new change id not saved yet
    renew:intent       renewal intent recorded, PUT with force-renewal not sent yet
    renew:posted       CPS accepted the renewal, its change id and the token not saved yet
    challenges:published   DV challenges published, not yet acknowledged to CPS
    challenges:acknowledged  acknowledgement sent
    upload:intent      fingerprints recorded, certificates not uploaded yet
    upload:posted      certificates uploaded, state not told yet
    upload:saved       upload recorded in state
    warnings:acknowledged  pre/post-verification warnings acknowledged
    change-management:acknowledged
    deployed           production shows the new certificate, state not finished yet
    delete:intent      a predecessor's successors serve its names; delete intent recorded, not sent
    delete:posted      CPS accepted the delete, state not told yet
"""

from __future__ import annotations

import os
import signal

ENV = "RECONCILE_TEST_KILL_AT"

BOUNDARIES = (
    "replace:retired", "create:intent", "create:posted", "create:saved", "update:intent", "update:posted",
    "renew:intent", "renew:posted",
    "challenges:published", "challenges:acknowledged",
    "upload:intent", "upload:posted", "upload:saved",
    "warnings:acknowledged", "change-management:acknowledged", "deployed",
    "delete:intent", "delete:posted",
)


def checkpoint(name: str, boundary: str) -> None:
    """Die here if the test hook asks for this boundary (for any enrollment or for ``name``)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    if wanted in (boundary, f"{name}:{boundary}"):
        os.kill(os.getpid(), signal.SIGKILL)
