"""Environment variables that hold secrets this process uses, kept from the commands it starts.

A DV publisher or signer hook is the customer's code and gets our environment (``apply/shell.py``);
a variable registered here (the PostgreSQL state DSN, which carries a password) is left out of it,
so a hook that logs its environment cannot leak it. Registering changes nothing in ``os.environ``.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_hidden: set[str] = set()


def hide(name: str) -> None:
    """Keep the variable ``name`` out of every child environment from now on."""
    with _lock:
        _hidden.add(name)


def child_environment() -> dict[str, str]:
    """``os.environ`` without the hidden variables: the base of every hook's environment."""
    with _lock:
        hidden = set(_hidden)
    return {k: v for k, v in os.environ.items() if k not in hidden}
