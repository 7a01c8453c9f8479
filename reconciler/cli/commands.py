"""Every command module, registered on the group in this order."""

from __future__ import annotations

import click

ALL: list[click.Command] = []

from reconciler.cli.sandbox_cmd import sandbox  # noqa: E402

ALL.append(sandbox)

from reconciler.cli.validate_cmd import validate  # noqa: E402

ALL.append(validate)

from reconciler.cli.schema_cmd import schema  # noqa: E402

ALL.append(schema)

from reconciler.cli.plan_cmd import plan  # noqa: E402

ALL.append(plan)

from reconciler.cli.apply_cmd import apply  # noqa: E402

ALL.append(apply)

from reconciler.cli.sandbox_sign_cmd import sandbox_sign  # noqa: E402

ALL.append(sandbox_sign)

from reconciler.cli.sandbox_clock_cmd import sandbox_clock  # noqa: E402

ALL.append(sandbox_clock)

from reconciler.cli.challenges_cmd import challenges  # noqa: E402

ALL.append(challenges)

from reconciler.cli.csr_cmd import csr  # noqa: E402

ALL.append(csr)

from reconciler.cli.status_cmd import status  # noqa: E402

ALL.append(status)

from reconciler.cli.import_cmd import import_  # noqa: E402

ALL.append(import_)

from reconciler.cli.state_cmd import state  # noqa: E402

ALL.append(state)
