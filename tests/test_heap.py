"""The collector holds: full passes wait, young ones go on, thresholds come back (reconciler.heap)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap

import pytest

from reconciler.heap import HOLDS_FULL_PASSES, no_full_collections

needs_full_passes = pytest.mark.skipif(not HOLDS_FULL_PASSES, reason="incremental collector: no full pass to hold")


@needs_full_passes
def test_a_hold_postpones_only_the_full_pass_and_restores_the_threshold() -> None:
    young, middle, full = gc.get_threshold()
    with no_full_collections():
        held = gc.get_threshold()
    assert held[:2] == (young, middle) and held[2] > 10**6
    assert gc.get_threshold() == (young, middle, full)


@needs_full_passes
def test_overlapping_holds_restore_when_the_last_one_ends_whatever_the_order() -> None:
    before = gc.get_threshold()
    first, second = no_full_collections(), no_full_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # ends first, as one of two concurrent refreshes may
    assert gc.get_threshold()[2] > 10**6
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


@needs_full_passes
def test_inside_a_hold_allocation_sets_off_young_collections_but_no_full_one() -> None:
    # A fresh interpreter: its small heap makes the control (the same allocation without a hold
    # sets off a full pass) certain.
    script = textwrap.dedent("""
        import gc, json
        from reconciler.heap import no_full_collections
        counts = {0: 0, 1: 0, 2: 0}
        gc.callbacks.append(lambda phase, info: phase == "start" and counts.__setitem__(
            info["generation"], counts[info["generation"]] + 1))
        def allocate():
            return [{"n": i} for i in range(400_000)]
        with no_full_collections():
            kept = allocate()
        held = dict(counts)
        counts.update({0: 0, 1: 0, 2: 0})
        kept.append(allocate())
        print(json.dumps({"held": held, "free": counts}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    counts = json.loads(result.stdout)
    assert counts["held"]["2"] == 0 and counts["held"]["0"] > 0
    assert counts["free"]["2"] > 0  # the control: without the hold the same allocation sets one off


def test_the_reconcile_program_freezes_its_startup_heap_and_an_in_process_caller_keeps_its_own() -> None:
    script = textwrap.dedent("""
        import atexit, gc, sys
        atexit.register(lambda: print(gc.get_freeze_count()))
        from reconciler.cli.main import main
        sys.argv = ["reconcile", "--version"]
        main()
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 10_000  # the imports: modules, classes, schemas

    from click.testing import CliRunner

    from reconciler.cli.main import cli

    before = gc.get_freeze_count()
    assert CliRunner().invoke(cli, ["--version"]).exit_code == 0
    assert gc.get_freeze_count() == before
