"""The `diff` request: everything an agent changed against its base, file by file (`supervisor.git.changes`),
for the dashboard's diff view. `supervisor diff NAME` prints the same changes as one diff."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor.engine.desk import Desk
from supervisor.git.changes import agent_files

if TYPE_CHECKING:
    pass


class ReviewDesk(Desk):
    """The `diff` request (a service without a thread of its own: git runs in the request's thread)."""

    def op_diff(self, name: str) -> dict[str, Any]:
        """The agent's commits, uncommitted edits and new files against its base, one entry per file (its
        hunks cut past a few thousand lines: `supervisor diff NAME` has them all)."""
        agent = self.engine.get(name)
        record = {"name": agent.name, "base": agent.base, "branch": agent.branch, "worktree": agent.worktree}
        files = agent_files(self.engine.paths.root, record)
        return {"name": agent.name, "base": agent.base, "branch": agent.branch, "target": agent.target,
                "files": [found.as_dict() for found in files]}
