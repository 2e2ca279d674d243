"""The `diff` request: everything an agent changed against its base, file by file (`supervisor.git.changes`),
for the dashboard's diff view. `supervisor diff NAME` prints the same changes as one diff.

For an agent on a host: its commits as fetched home (supervisor/git/agent_refs.py) against its base, then what
its worktree on the host has beyond them (edits not committed, new files, commits not fetched yet), from `git
diff` run there; while the host is down, its commits alone, and `host_error` says why the rest is missing."""

from __future__ import annotations

from typing import Any

from supervisor.core.model import Agent
from supervisor.engine.desk import Desk
from supervisor.errors import SupervisorError
from supervisor.git import worktrees
from supervisor.git.agent_refs import branch_ref, is_remote
from supervisor.git.changes import agent_diff, commits_diff, split_files
from supervisor.hosts.remote.host import RemoteHost


class ReviewDesk(Desk):
    """The `diff` request (a service without a thread of its own: git runs in the request's thread)."""

    def op_diff(self, name: str, text: bool = False, stat: bool = False, colour: bool = False) -> dict[str, Any]:
        """The agent's commits, uncommitted edits and new files against its base, one entry per file (its
        hunks cut past a few thousand lines: `supervisor diff NAME` has them all); with `text`, as one diff
        (`stat`: git's summary instead, `colour`: coloured)."""
        agent = self.engine.get(name)
        patch, host_error = self.changes(agent, stat=stat and text, colour=colour and text)
        found: dict[str, Any] = {"name": agent.name, "base": agent.base, "branch": agent.branch,
                                 "target": agent.target, "host": agent.host}
        if host_error is not None:
            found["host_error"] = host_error
        if text:
            return {**found, "text": patch}
        return {**found, "files": [entry.as_dict() for entry in split_files(patch)]}

    def changes(self, agent: Agent, *, stat: bool = False, colour: bool = False) -> tuple[str, str | None]:
        """The agent's changes as one diff, and why what is on its host is missing from it (None: it is not)."""
        root = self.engine.paths.root
        if not is_remote(agent):
            record = {"name": agent.name, "base": agent.base, "branch": agent.branch, "worktree": agent.worktree}
            return agent_diff(root, record, stat=stat, colour=colour), None
        ref = branch_ref(agent)
        try:
            tip = worktrees.resolve(root, ref)
        except SupervisorError:
            tip = agent.base  # nothing came home yet
        committed = commits_diff(root, agent.name, agent.base, tip, stat=stat, colour=colour)
        host = self.engine.host_of(agent)
        try:
            if not isinstance(host, RemoteHost):
                raise SupervisorError(f"host {agent.host} is not one of supervisor.yaml's hosts")
            there = host.worktrees.diff_against(agent, tip, stat=stat, colour=colour)
        except SupervisorError as exc:
            return committed, exc.message
        return committed + there, None
