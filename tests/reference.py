"""Where the official OpenAPI definitions are: ``shared/reference`` beside the repository (as on
developer machines and in CI), or ``CPS_REFERENCE_ROOT``. Tests that read them skip when absent;
the sandbox ships a checked copy of the CPS schemas, so most validation needs none of this."""

from __future__ import annotations

import os
from pathlib import Path

REFERENCE_ROOT = Path(
    os.environ.get("CPS_REFERENCE_ROOT", Path(__file__).resolve().parents[2] / "shared" / "reference")
)
CPS_V2 = Path(os.environ.get("CPS_REFERENCE", REFERENCE_ROOT / "cps-v2"))
EDGEDNS_V2 = REFERENCE_ROOT / "edgedns-v2"
