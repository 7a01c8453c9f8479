"""The state file: what reconciler did to which enrollment, kept so that runs resume and never duplicate."""

from __future__ import annotations

from reconciler.state.model import ChangeInFlight, Intent, PublishedChallenge, State, StateEntry
from reconciler.state.store import LockInfo, StateStore

__all__ = ["ChangeInFlight", "Intent", "LockInfo", "PublishedChallenge", "State", "StateEntry", "StateStore"]
