"""How often the dashboard draws the engine's news: at most once a second, and what the user does at once.

Under churn (100 agents, each changing state, CPU and memory every second) news comes in bursts, several a
second: a long-poll answer, the listing it asks for, another answer for the rest of the burst, its listing,
the diff stats. Drawn as each came, that was three frames a second, each repainting the whole visible agents
list (its ages, CPU and memory) and the lines logged, 15-25 ms a frame. A `Pacer` draws news at most once per
`gap` (a second: the ages the tables show tick by the second, so nothing shows later than its second): at
once when the last drawing is older than that, else when it will be, one drawing for everything that came
meanwhile. What the user does (a key, a filter, a resize, the listing that follows an action of theirs) is
drawn at once, and counts as the drawing of the news that came before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.timer import Timer

REDRAW_SECONDS = 1.0


class Pacer:
    """Calls `draw` for news at most once per `gap` seconds; `drawn` says a drawing happened by another path."""

    def __init__(self, schedule: Callable[[float, Callable[[], None]], Timer], draw: Callable[[], None],
                 gap: float = REDRAW_SECONDS) -> None:
        self._schedule = schedule
        self._draw = draw
        self.gap = gap
        self._last = float("-inf")  # monotonic time of the last drawing
        self._timer: Timer | None = None

    @property
    def pending(self) -> bool:
        """News waits to be drawn."""
        return self._timer is not None

    def soon(self) -> None:
        """News came: drawn now if the last drawing is `gap` old, else once it is."""
        if self._timer is not None:
            return
        # (A timer of 0 s is refused by Textual: a millisecond is "now".)
        self._timer = self._schedule(max(0.001, self._last + self.gap - time.monotonic()), self._due)

    def drawn(self) -> None:
        """Everything known was just drawn: nothing waits."""
        self._last = time.monotonic()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _due(self) -> None:
        self._timer = None
        self._draw()
