"""Agents whose panes went with the tmux server: ended together, marked restorable, told once.

The watcher finds them one by one as it judges each agent (its pane is gone, and the server running now, if
any, is not the one the pane was on) and hands them here; at the end of the tick they are ended in one
transaction with one `exited` trigger about the server (`tmux:`) that names them all, so a reader never sees
them ended without the alert, and the human hears of it once, not once per agent.

Each is `exited` with the reason `tmux server ended`, its waiting reason and held approvals dropped, and
marked restorable (`extra["restorable"]`: `supervisor restore` brings such agents back). An agent that ended
by itself, was stopped, or whose window alone was closed is not; a launch, a stop or a removal clears the mark.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from supervisor.core import subjects
from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

REASON = "tmux server ended"
RESTORABLE = "restorable"  # agent.extra key: its pane went with the tmux server, and nothing started it since
SUMMARY = "the tmux server ended and took its agents with it: `supervisor restore --all` brings them back"


class ServerEnded:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._found: dict[str, int] = {}  # agent -> its record's version when found
        self._guard = threading.Lock()

    def found(self, agent: Agent) -> None:
        """The agent's pane went with the server (the caller holds its lock): ended at the next `settle`."""
        with self._guard:
            self._found[agent.name] = self.engine.store.version(agent.name)

    def settle(self) -> None:
        """End every agent found since the last call, together, and tell it once. One that is busy (an
        operation holds it) or changed since it was found is left for the next tick to judge again."""
        engine = self.engine
        with self._guard:
            found, self._found = self._found, {}
        locks = []
        agents: list[Agent] = []
        try:
            for name, version in sorted(found.items()):
                lock = engine.try_agent_lock(name)
                if lock is None:
                    continue
                locks.append(lock)
                agent = engine.store.get_agent(name) if engine.store.version(name) == version else None
                if agent is not None and agent.state.live:
                    agents.append(agent)
            if agents:
                self._end(agents)
        finally:
            for lock in locks:
                lock.release()

    def _end(self, agents: list[Agent]) -> None:
        engine = self.engine
        names = [agent.name for agent in agents]
        for agent in agents:
            engine.approvals.drop(agent.name, REASON)
        with engine.store.transaction():
            for agent in agents:
                agent.reason = REASON
                agent.exit_code = None
                agent.extra[RESTORABLE] = True
                engine.set_state(agent, State.EXITED, "exited", reason=REASON, restorable=True)
            fire(engine.store, agents[0], Trigger.EXITED, f"{REASON}: {', '.join(names)}", subject=subjects.TMUX,
                 subject_summary=SUMMARY, agents=names)
