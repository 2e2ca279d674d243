"""Events as sentences (supervisor/core/eventtext.py): times as the clock shows them, lists as words."""

from __future__ import annotations

import time

from supervisor.core.eventtext import clock, describe


def test_times_read_as_the_time_of_day_never_as_seconds_of_the_epoch() -> None:
    at = time.time() - 90
    for event in ({"kind": "trigger", "trigger": "stalled", "summary": "no output for 10m", "since": at},
                  {"kind": "snoozed", "until": at, "channels": ["tmux", "slack"]},
                  {"kind": "limit", "reset": at, "resets_at": at}):
        text = describe(event)
        assert clock(at) in text, text
        assert str(int(at)) not in text and "=" not in text and "['" not in text, text


def test_a_moment_of_another_day_carries_its_date() -> None:
    yesterday = time.time() - 86400 * 2
    assert clock(yesterday).startswith(time.strftime("%Y-%m-%d", time.localtime(yesterday)))
    assert describe({"kind": "snoozed", "until": yesterday}) == f"snoozed: until {clock(yesterday)}"
