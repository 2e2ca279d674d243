"""An agent's worktree on a host: the clone brought up to date over the link, worktrees, SESSION.md and guard,
its own code run there, and its commits brought home as its branch moves."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from supervisor.core.model import Agent
from supervisor.errors import SupervisorError
from supervisor.hosts.commands import Ran

if TYPE_CHECKING:
    from supervisor.hosts.remote.host import RemoteHost


class RemoteWorktrees:
    def __init__(self, host: RemoteHost) -> None:
        self.host = host

    def make_worktree(self, agent: Agent, base: str, within: str | None) -> str:
        raise SupervisorError(f"agents on host {self.host.name} cannot be started yet")

    def write_session(self, agent: Agent, contract: str) -> None:
        raise SupervisorError(f"agents on host {self.host.name} cannot be started yet")

    def run_isolated(self, agent: Agent, command: str, cwd: str, env: Mapping[str, str], *,
                     timeout: float | None = None, stop: threading.Event | None = None, keep: int = 20) -> Ran:
        raise SupervisorError(f"commands on host {self.host.name} cannot be run yet")

    def remove_worktree(self, agent: Agent) -> None:
        raise SupervisorError(f"worktrees on host {self.host.name} cannot be removed yet")

    def remove_state(self, agent: Agent) -> None:
        raise SupervisorError(f"folders on host {self.host.name} cannot be removed yet")
