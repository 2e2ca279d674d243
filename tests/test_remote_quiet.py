"""What a quiet agent on a host costs the engine at home, against the real sshd host box1 (tests/remotes.py): on a
slow tick (every tree there read) its tree is metered, CPU and memory for `ls`, without judging it again, as the
local watch does; its tools waking up silently still make it working."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from supervisor.engine.hostticks import SLOW_CHECK_EVERY
from tests.conftest import wait_until
from tests.remotes import HOST, Remote, remote_fixture  # noqa: F401  (the fixture)

QUIET = "sh -c 'echo ready; exec sleep 100000'"
WAKES = "sh -c 'echo ready; sleep 8; timeout 20 sh -c \"while :; do :; done\"; exec sleep 100000'"


def judged(remote: Remote) -> list[str]:
    """The names of the agents the watch judges from now on, as it judges them (the judgement itself unchanged)."""
    watcher = remote.engine.watcher
    names: list[str] = []
    guard = threading.Lock()
    evaluate: Callable[..., None] = watcher.evaluate

    def counted(agent: Any, *args: Any, **kwargs: Any) -> None:
        with guard:
            names.append(agent.name)
        evaluate(agent, *args, **kwargs)

    watcher.evaluate = counted  # type: ignore[method-assign]
    return names


def test_a_quiet_agent_on_a_host_is_metered_on_slow_ticks_without_being_judged(remote: Remote) -> None:
    box = remote.sandbox
    remote.request("start", name="still", command=QUIET, host=HOST)
    box.wait_state("still", "idle", timeout=60)
    engine = remote.engine
    wait_until(lambda: (live := engine.live.get("still")) is not None and live.quiet_key is not None, timeout=30,
               message="still judged quiet")
    live = engine.live["still"]

    def metered(what: str) -> None:
        with engine.agent_lock("still"):
            live.rss_bytes = 0  # read again by the next slow tick's metering
        wait_until(lambda: live.rss_bytes > 0, timeout=SLOW_CHECK_EVERY * 6, message=f"its tree metered {what}")

    # Counted from a slow tick on: a look in the second it printed its last line is a look at a screen that may
    # have changed (tmux tells output times in whole seconds), and judges it, rightly.
    metered("again")
    names = judged(remote)
    metered("once more")
    metered("a third time")
    assert "still" not in names, names  # two slow ticks read its tree: neither judged it again
    assert box.ls()["still"]["state"] == "idle"


def test_a_quiet_agent_on_a_host_whose_tools_wake_silently_is_working(remote: Remote) -> None:
    box = remote.sandbox
    remote.request("start", name="waking", command=WAKES, host=HOST)
    box.wait_state("waking", "idle", timeout=60)
    wait_until(lambda: (live := remote.engine.live.get("waking")) is not None and live.quiet_key is not None,
               timeout=30, message="waking judged quiet")
    busy = box.wait_state("waking", "working", timeout=60)  # no output: its tools' CPU, read on a slow tick
    assert busy["cpu_percent"] >= 3, busy
