"""Keeping the garbage collector's full passes out of the way of concurrent network work.

A full collection walks every object the interpreter tracks: about 100,000 once a command has
imported what it needs (pydantic's schemas, httpx, click), before it has read anything. Refresh
then takes answers that arrive every few milliseconds, and the objects it makes on the way (a
listed thousand enrollments) set off a full pass mid-round: 70 ms measured at N = 1,000, during
which no answer is read and no request goes out. Young collections stay on throughout: they are
cheap and reclaim short-lived cycles.

Python 3.14's incremental collector has no separate full pass (it scans the old generation a
slice at a time, with short pauses) and ignores the third threshold; there the hold does nothing
(``HOLDS_FULL_PASSES`` is false).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_NEVER = 2**30
"""A gen-2 threshold no run reaches: the full pass waits until the hold ends."""

_holds = 0
_saved_threshold: int | None = None


def _full_threshold_honoured() -> bool:
    """Whether this interpreter's collector keeps a third (full-pass) threshold."""
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, full + 1)
    honoured = gc.get_threshold()[2] == full + 1
    gc.set_threshold(young, middle, full)
    return honoured


HOLDS_FULL_PASSES = _full_threshold_honoured()
"""False where the collector is incremental (3.14+): ``no_full_collections`` then does nothing."""


def freeze_startup_heap() -> None:
    """Set what exists now (modules, classes, schemas, a server's loaded data: alive until exit
    anyway) aside for good, so later full passes walk only what came after."""
    gc.freeze()


@contextmanager
def no_full_collections() -> Iterator[None]:
    """No full collection inside the block; the first one due runs at the next allocation after.

    Holds may overlap in any order (two refreshes in one event loop): the threshold is restored
    when the last one ends, not by whichever ends first.
    """
    global _holds, _saved_threshold
    if _holds == 0 and HOLDS_FULL_PASSES:
        young, middle, full = gc.get_threshold()
        _saved_threshold = full
        gc.set_threshold(young, middle, _NEVER)
    _holds += 1
    try:
        yield
    finally:
        _holds -= 1
        if _holds == 0 and _saved_threshold is not None:
            young, middle, _ = gc.get_threshold()
            gc.set_threshold(young, middle, _saved_threshold)
            _saved_threshold = None
