"""The cap on automatic restarts: `limits.max_auto_restarts` within `limits.auto_restart_window` per agent.

What makes the engine start an agent again by itself (its restart policy after an exit, `on_stall: restart`,
`restore: auto`) is read from what the agent's pane shows: its exit, its silence, its screen. An agent can make
its pane show anything (a local one prints what it likes; on a host, the host's answers are the pane), so a
pane that keeps ending, or a host that keeps saying so, would have the engine restart it forever, and each run
costs a launch, a transcript and maybe an alert. The policy's own count (`max_restarts`) holds only for quick
exits in a row; this cap holds whatever each run lasted. Past it the agent stays exited with the reason, and
its one `exited` alert says so. A human's `restart` is theirs: it starts the count afresh.

`agent.extra[KEY]`: the times (epoch seconds) of the automatic restarts within the window, oldest first.
"""

from __future__ import annotations

from supervisor.config import LimitsConfig
from supervisor.core.durations import format_duration
from supervisor.core.model import Agent

KEY = "auto_restarts"


def _recent(agent: Agent, limits: LimitsConfig, now: float) -> list[float]:
    times = agent.extra.get(KEY)
    if not isinstance(times, list):
        return []
    return [float(t) for t in times if isinstance(t, int | float) and now - float(t) < limits.auto_restart_window]


def refusal(agent: Agent, limits: LimitsConfig, now: float) -> str | None:
    """Why the engine must not restart the agent by itself now, or None when it may."""
    recent = _recent(agent, limits, now)
    if len(recent) < limits.max_auto_restarts:
        return None
    return (f"{len(recent)} automatic restarts within {format_duration(limits.auto_restart_window)} "
            f"(limits.max_auto_restarts)")


def count(agent: Agent, limits: LimitsConfig, now: float) -> None:
    """One automatic restart, now (the caller saves the record)."""
    agent.extra[KEY] = [*_recent(agent, limits, now), now][-max(limits.max_auto_restarts, 1):]


def forget(agent: Agent) -> None:
    """A human's restart: the automatic ones before it no longer count."""
    agent.extra.pop(KEY, None)
