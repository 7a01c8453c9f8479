"""Progress of an apply, for people: a rich live table on a terminal, plain lines otherwise.

Both take ``report(name, step, detail)`` calls from the executor and workflows. The plain form
writes ``name: step (detail)`` once per step change (a poll that finds nothing new prints
nothing), which suits CI logs; the live form keeps one row per enrollment with its current step
and elapsed time.
"""

from __future__ import annotations

import time
from typing import Protocol, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table


class Progress(Protocol):
    """What the executor reports to; ``close`` ends the display."""

    def __call__(self, name: str, step: str, detail: str) -> None: ...

    def close(self) -> None: ...


class PlainProgress:
    """``name: step (detail)`` lines, one per change of step."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._last: dict[str, tuple[str, str]] = {}

    def __call__(self, name: str, step: str, detail: str) -> None:
        if self._last.get(name) == (step, detail):
            return
        self._last[name] = (step, detail)
        self.stream.write(f"{name}: {step}" + (f" ({detail})" if detail else "") + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class LiveProgress:
    """A live table: enrollment, step, detail, elapsed since its first report."""

    def __init__(self, console: Console) -> None:
        self._rows: dict[str, tuple[str, str, float]] = {}
        self._live = Live(self._table(), console=console, refresh_per_second=4, transient=False)
        self._live.start()

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("enrollment", "step", "detail", "elapsed"):
            table.add_column(column, style="bold" if column == "enrollment" else None,
                             justify="right" if column == "elapsed" else "left", overflow="fold")
        now = time.monotonic()
        for name, (step, detail, started) in self._rows.items():
            style = ("green" if step == "-> done" else "yellow" if step in ("-> waiting", "-> submitted")
                     else "red" if step in ("-> failed", "-> timeout") else None)
            table.add_row(name, f"[{style}]{step}[/]" if style else step, detail, f"{now - started:5.0f}s")
        return table

    def __call__(self, name: str, step: str, detail: str) -> None:
        started = self._rows[name][2] if name in self._rows else time.monotonic()
        self._rows[name] = (step, detail[:80], started)
        self._live.update(self._table())

    def close(self) -> None:
        self._live.update(self._table())
        self._live.stop()


def make_progress(stream: TextIO, *, color: bool) -> Progress:
    """Live view on a colour terminal, plain lines when not a TTY or without colour."""
    if color and stream.isatty():
        return LiveProgress(Console(file=stream))
    return PlainProgress(stream)
