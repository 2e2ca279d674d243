"""What is uncommitted in an agent's worktree, wherever it is: read here for a local agent, asked of its host
(`git status --porcelain` run there) for a remote one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.core.model import Agent
from supervisor.git import worktrees
from supervisor.hosts.remote.host import RemoteHost

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine


def uncommitted_changes(engine: Engine, agent: Agent) -> list[str]:
    """`git status --porcelain` lines of the agent's worktree (supervisor's own files are excluded). For an
    agent on a host that is down: HostUnreachable."""
    host = engine.host_of(agent)
    if isinstance(host, RemoteHost):
        return host.worktrees.uncommitted_changes(agent)
    return worktrees.uncommitted_changes(Path(agent.worktree))
