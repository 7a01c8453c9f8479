"""The working files apply keeps beside the state, per enrollment, and their cleanup.

===========================================  ===============================================
file                                         written by
===========================================  ===============================================
``state/challenges/NAME.json`` (``.zone``)   the challenge ledger (``publishers/ledger.py``)
``state/csr/NAME.rsa.csr.pem`` (``.ecdsa``)   the third-party upload step, ``reconcile csr``
===========================================  ===============================================

They belong to an entry of the state: when the entry is forgotten they go with it
(:func:`forget`), when it is moved they move with it (:func:`rename`), and :func:`sweep` (run by apply under the state lock) removes what a killed
writer left (temporary files) and the files of names no longer in the state.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection
from pathlib import Path

KEY_ALGORITHMS = ("rsa", "ecdsa")
# Temporary files: ours end in .tmp; older versions left ``.<file>.<8 random chars>`` (mkstemp).
_TEMP = re.compile(r"^\..+\.(tmp|[A-Za-z0-9_]{8})$")
_OWNED = {"challenges": re.compile(r"^(?P<name>.+)\.(json|zone)$"),
          "csr": re.compile(rf"^(?P<name>.+)\.({'|'.join(KEY_ALGORITHMS)})\.csr\.pem$")}


def challenges_dir(state_dir: Path) -> Path:
    return state_dir / "challenges"


def csr_dir(state_dir: Path) -> Path:
    return state_dir / "csr"


def csr_file_name(name: str, key_algorithm: str) -> str:
    """``www.rsa.csr.pem``: the file name of a spec's CSR for one key slot (here or in ``csr --out``)."""
    return f"{name}.{key_algorithm}.csr.pem"


def csr_path(state_dir: Path, name: str, key_algorithm: str) -> Path:
    return csr_dir(state_dir) / csr_file_name(name, key_algorithm)


def files_of(state_dir: Path, name: str) -> list[Path]:
    """Every working file ``name`` may have."""
    challenges = challenges_dir(state_dir)
    return [challenges / f"{name}.json", challenges / f"{name}.zone",
            *(csr_path(state_dir, name, alg) for alg in KEY_ALGORITHMS)]


def forget(state_dir: Path, name: str) -> list[Path]:
    """Remove the working files of ``name`` (its state entry is gone); the paths removed."""
    removed = []
    for path in files_of(state_dir, name):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def rename(state_dir: Path, old: str, new: str) -> list[Path]:
    """Give ``old``'s working files to ``new`` (its state entry was moved); the paths now used.
    A file ``new`` already has is kept and ``old``'s copy is left for :func:`sweep`."""
    moved = []
    for source, target in zip(files_of(state_dir, old), files_of(state_dir, new), strict=True):
        if source.exists() and not target.exists():
            source.rename(target)
            moved.append(target)
    return moved


def sweep(state_dir: Path, names: Collection[str]) -> list[Path]:
    """Remove temporary leftovers and the files of names not in ``names``; the paths removed.

    Only while the state lock is held (no writer of these files runs).
    """
    removed = []
    for room, owned in _OWNED.items():
        try:
            children = list((state_dir / room).iterdir())
        except (FileNotFoundError, NotADirectoryError):
            continue
        for path in children:
            match = owned.match(path.name)
            stale = _TEMP.match(path.name) if path.name.startswith(".") else \
                match is not None and match["name"] not in names
            if stale and path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed
