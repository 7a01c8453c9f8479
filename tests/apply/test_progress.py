"""Progress views: plain lines (deduplicated) for logs, a live table for terminals."""

from __future__ import annotations

import io

from rich.console import Console

from reconciler.apply.progress import LiveProgress, PlainProgress, make_progress


def test_plain_lines_once_per_step() -> None:
    out = io.StringIO()
    progress = PlainProgress(out)
    progress("www", "coodinate-domain-validation", "waiting")
    progress("www", "coodinate-domain-validation", "waiting")  # a poll that found nothing new
    progress("api", "create enrollment", "")
    progress("www", "-> done", "deployed")
    progress.close()
    assert out.getvalue().splitlines() == [
        "www: coodinate-domain-validation (waiting)", "api: create enrollment", "www: -> done (deployed)"]


def test_live_table_shows_each_enrollment() -> None:
    out = io.StringIO()
    progress = LiveProgress(Console(file=out, force_terminal=True, width=120))
    progress("www", "publish DV challenges", "2 dns-01 via hook")
    progress("shop", "upload certificates", "RSA 0123")
    progress("www", "-> done", "deployed")
    progress.close()
    text = out.getvalue()
    assert "shop" in text and "upload certificates" in text and "-> done" in text and "elapsed" in text


def test_choice_follows_tty_and_colour() -> None:
    assert isinstance(make_progress(io.StringIO(), color=True), PlainProgress)  # not a terminal

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(make_progress(Tty(), color=False), PlainProgress)
    live = make_progress(Tty(), color=True)
    assert isinstance(live, LiveProgress)
    live.close()
