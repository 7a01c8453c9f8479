"""The state: what reconciler did to which enrollment, kept so that runs resume and never duplicate."""

from __future__ import annotations

from reconciler.state.backend import LockInfo, StateBackend
from reconciler.state.model import ChangeInFlight, Intent, PublishedChallenge, State, StateEntry
from reconciler.state.store import StateStore

__all__ = ["ChangeInFlight", "Intent", "LockInfo", "PublishedChallenge", "State", "StateBackend", "StateEntry",
           "StateStore"]
