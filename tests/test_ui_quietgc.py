"""The dashboard's garbage collection: full passes only while nobody types, and everything put back after."""

from __future__ import annotations

import gc
import time

from supervisor.ui.quietgc import FORCE_SECONDS, FULL_SECONDS, IDLE_SECONDS, YOUNG_ALLOCATIONS, QuietCollector


def test_full_passes_wait_for_a_quiet_moment_and_stop_restores_the_collector() -> None:
    saved = gc.get_threshold()
    collector = QuietCollector()
    collector.start()
    try:
        assert gc.get_freeze_count() > 0  # the heap as built is left out of full passes
        assert gc.get_threshold()[2] > 10**6  # no automatic full pass
        # Young passes after thousands of new objects, not CPython's 700: a frame makes and drops thousands.
        assert gc.get_threshold()[0] >= YOUNG_ALLOCATIONS > saved[0] and gc.get_threshold()[1] == saved[1]
        assert not collector.tick(idle_for=60.0)  # just collected
        collector.last_full = time.monotonic() - FULL_SECONDS - 1
        assert not collector.tick(idle_for=IDLE_SECONDS / 2)  # someone is typing
        assert collector.tick(idle_for=IDLE_SECONDS)
        assert collector.full_passes == 1
        collector.last_full = time.monotonic() - FORCE_SECONDS - 1
        assert collector.tick(idle_for=0.0)  # typing for a minute without a break: due anyway
    finally:
        collector.stop()
    assert gc.get_threshold() == saved
    assert gc.get_freeze_count() == 0
    assert not collector.tick(idle_for=60.0)  # stopped: nothing runs
