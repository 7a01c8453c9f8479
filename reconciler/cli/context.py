"""Global options shared by every command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class GlobalOptions:
    """What the top-level flags (and their environment variables) said."""

    config_path: Path | None = None
    edgerc: Path | None = None
    section: str | None = None
    account_switch_key: str | None = None
    sandbox: bool = False
    no_color: bool = False
    verbose: int = 0

    @property
    def color(self) -> bool:
        return not self.no_color and "NO_COLOR" not in os.environ
