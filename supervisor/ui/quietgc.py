"""The garbage collector's full passes, moved to moments when nobody types.

A full pass of CPython's cycle collector walks every tracked object. Under churn (100 agents changing every
second) the dashboard's heap (Textual, its widgets, styles and render caches) made one run every second or
two, each stalling the event loop for 50-170 ms: a key pressed then waited for it, which was most of the
dashboard's slow tail. So, while the dashboard runs:
- what exists once it has drawn its first listing (most of the heap, and long-lived) is frozen: full passes
  skip it (`gc.freeze`; reference counting still frees it);
- young generations are collected automatically, after YOUNG_ALLOCATIONS objects rather than CPython's 700:
  drawing a frame makes and drops thousands, and a pass every 700 ran eight times a second (4 ms a second
  of CPU, about a tenth of the dashboard's under churn); with this, once every few seconds (a few ms each);
- full passes only from `tick`, when no key has been pressed for IDLE_SECONDS, at most every FULL_SECONDS,
  and at the latest after FORCE_SECONDS of non-stop typing. A full pass costs by the heap (25-50 ms at 100
  agents), not by the garbage it finds (a few thousand objects in 10 s: the young passes take most): once a
  minute holds what waits to be freed to a few MB.
`stop` puts the collector back as it was (tests run many dashboards in one process).
"""

from __future__ import annotations

import gc
import time

IDLE_SECONDS = 1.0
FULL_SECONDS = 60.0
FORCE_SECONDS = 180.0
YOUNG_ALLOCATIONS = 10_000
_NEVER = 1_000_000_000  # a third threshold no count reaches: no automatic full pass


class QuietCollector:
    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        self.last_full = time.monotonic()
        self.full_passes = 0

    @property
    def active(self) -> bool:
        return self._saved is not None

    def start(self) -> None:
        if self._saved is not None:
            return
        gc.collect()
        gc.freeze()
        self._saved = gc.get_threshold()
        gc.set_threshold(max(self._saved[0], YOUNG_ALLOCATIONS), self._saved[1], _NEVER)
        self.last_full = time.monotonic()

    def tick(self, idle_for: float) -> bool:
        """A full pass if it is a good moment (or overdue); whether one ran."""
        if self._saved is None:
            return False
        since = time.monotonic() - self.last_full
        if (idle_for >= IDLE_SECONDS and since >= FULL_SECONDS) or since >= FORCE_SECONDS:
            gc.collect()
            self.last_full = time.monotonic()
            self.full_passes += 1
            return True
        return False

    def stop(self) -> None:
        if self._saved is None:
            return
        gc.set_threshold(*self._saved)
        self._saved = None
        gc.unfreeze()
