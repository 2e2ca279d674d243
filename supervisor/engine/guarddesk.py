"""`guard` for an agent whose worktree is on a host: its pre-commit hook there (the host client's `guard`) sends
the staged changes home, and the engine checks them against the contract it keeps, as the guard checks a local
agent's against the contract file the engine writes (supervisor/git/guard.py). Advice to the agent, as locally:
the audit at home checks every commit that comes home."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor.core.contract import render_contract
from supervisor.core.model import Agent
from supervisor.engine.helpers import contract_of
from supervisor.errors import SupervisorError, UsageError
from supervisor.git.guard import refusal

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

MERGE_NOTE = ("supervisor: a merge on a host is checked by the audit at home, once its commits come home "
              "(`supervisor merge` refuses what its contract does not allow)\n")


class GuardDesk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def op_guard(self, changes: Any, merge: bool = False, _caller: Agent | None = None) -> dict[str, Any]:
        """The staged `changes` ([status, path, old path or null] each) of the caller's commit → `refused` (the
        guard's text, or null when the contract allows them) and `note` (what the client says all the same)."""
        agent = _caller
        if agent is None:
            raise SupervisorError("guard checks the commits of an agent, from its own worktree")
        staged = _changes(changes)
        why = self.engine.contracts.refusal(agent)
        if why is not None:
            raise SupervisorError(f"commit refused: {agent.name}: {why}")
        if merge:
            return {"refused": None, "note": MERGE_NOTE}
        text = agent.extra.get("contract")
        if not isinstance(text, str):
            text = render_contract(contract_of(agent, self.engine.paths.root))
        rules = self.engine.contracts.rules_of(agent)
        return {"refused": refusal(agent.name, text, rules, staged, [], merging=False, target=agent.target or None),
                "note": None}


def _changes(changes: Any) -> list[tuple[str, str, str | None]]:
    if not isinstance(changes, list):
        raise UsageError("bad parameters for guard: changes must be a list")
    staged: list[tuple[str, str, str | None]] = []
    for change in changes:
        if not (isinstance(change, list) and len(change) == 3 and isinstance(change[0], str)
                and isinstance(change[1], str) and (change[2] is None or isinstance(change[2], str))):
            raise UsageError("bad parameters for guard: each change is [status, path, old path or null]")
        staged.append((change[0], change[1], change[2]))
    return staged
