"""What the engine needs from a machine that runs agents: launch an agent's command in a pane, and end it.

Only this machine (`LocalHost`) exists today; hosts reached over SSH come behind the same interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from supervisor.core.model import Agent
from supervisor.errors import SupervisorError
from supervisor.hosts.isolation import GOT
from supervisor.tmux.panes import PaneRef
from supervisor.tmux.server import PaneInfo


@dataclass(frozen=True)
class Launched:
    ref: PaneRef  # the pane the agent runs in
    pid: int  # the pane's first process: ending it ends the agent (with a sandbox, its whole PID namespace)
    history: int  # lines of earlier runs already in the pane (a respawn), already in the transcript
    isolation: str = "none"  # what it got: `sandbox` or `none`
    unconfined: str | None = None  # why it runs in no cgroup of its own though one was made for it


ISOLATED = GOT  # in an agent's record: the isolation its last launch got


class CannotIsolate(SupervisorError):
    """The agent's isolation cannot be had here (`isolation: sandbox` without a working bubblewrap)."""


class Host(Protocol):
    name: str

    def launch(self, agent: Agent, command: str, env: Mapping[str, str], into: PaneInfo | None,
               panes: Mapping[str, PaneInfo]) -> Launched:
        """Run `command` (a shell command line) for `agent` in its worktree with `env`, isolated as its
        settings say: again in its own pane `into`, or in a new one. Raises CannotIsolate, never running
        the agent less isolated than asked."""
        ...

    def end(self, agent: Agent, pane: PaneInfo | None, grace: float, since: float) -> list[int]:
        """End every process of the agent (its pane's tree, and what it left carrying its identity): TERM,
        `grace` seconds, KILL. The pids that survived."""
        ...
