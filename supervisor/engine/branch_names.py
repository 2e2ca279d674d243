"""Agent branches named the old way (`agent/NAME`) renamed to a folder of their own (`agent/NAME/work`).

Git cannot hold `agent/auth` and `agent/auth/work` at once (one is a file where the other needs a folder),
so each old branch is renamed with `git branch -m`, which moves a loose or a packed ref, its reflog, and the
HEAD of every worktree that has it checked out (a live agent keeps working on its branch under the new
name). A helper's `agent/auth.test` is a folder of its own, distinct from its parent's `agent/auth`.

The store follows: a record whose branch is its old name, and a target that names an old agent branch (a
helper's parent), get the new names. Renaming first and then the records makes it safe to stop anywhere:
the next start finds what is left to do. A branch git refuses to rename (a rebase in progress in its
worktree) keeps its old name, and its record too, until a later start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.core.model import validate_name
from supervisor.errors import SupervisorError
from supervisor.git import worktrees
from supervisor.git.audit import branch_tips
from supervisor.git.refs import agent_branch

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

OLD_PREFIX = "agent/"


def old_name(branch: str) -> str | None:
    """The agent an old-style branch `agent/NAME` belongs to, or None (any other branch)."""
    if not branch.startswith(OLD_PREFIX):
        return None
    name = branch.removeprefix(OLD_PREFIX)
    try:
        return validate_name(name)
    except SupervisorError:
        return None


def rename_branches(root: Path) -> tuple[list[str], dict[str, str]]:
    """Rename every old-style agent branch; the agents renamed, and those git refused (name → why)."""
    renamed: list[str] = []
    failed: dict[str, str] = {}
    for branch in sorted(branch_tips(root)):
        name = old_name(branch)
        if name is None:
            continue
        try:
            worktrees.run_git(root, "branch", "-m", branch, agent_branch(name))
        except SupervisorError as exc:
            failed[name] = str(exc)
            continue
        renamed.append(name)
    return renamed, failed


def migrate(engine: Engine) -> None:
    """At engine start, before anything reads a branch: rename the old branches and bring the records in
    line; what was done is an event, what could not be done a warning and an event."""
    root, store = engine.paths.root, engine.store
    try:
        renamed, failed = rename_branches(root)
    except SupervisorError as exc:
        log.warning("cannot list the agent branches to rename: %s", exc)
        return
    left = {OLD_PREFIX + name for name in failed}  # still there under the old name: records keep it
    agents = {agent.name for agent in store.agents()}
    moved = []
    for agent in store.agents():
        branch = target = None
        if agent.branch == OLD_PREFIX + agent.name and agent.branch not in left:
            branch = agent_branch(agent.name)
        owner = old_name(agent.target)
        if owner is not None and agent.target not in left and (owner in agents or owner in renamed):
            target = agent_branch(owner)
        if branch is None and target is None:
            continue
        with engine.agent_lock(agent.name):
            current = store.get_agent(agent.name)
            if current is None:
                continue
            was = (current.branch, current.target)
            current.branch = branch or current.branch
            current.target = target or current.target
            current.extra.pop("conflicts", None)  # named the old branches; the radar looks again
            store.save_agent(current, "branch_renamed", branch=current.branch, target=current.target,
                             was={"branch": was[0], "target": was[1]})
        moved.append(agent.name)
    if renamed or moved:
        log.info("agent branches renamed to agent/NAME/work: %s; records updated: %s", renamed, moved)
        store.append_event(None, "agent_branches_renamed", branches=renamed, records=moved)
    for name, why in failed.items():
        log.warning("agent %s: its branch %s%s keeps its old name for now: %s", name, OLD_PREFIX, name, why)
        store.append_event(name, "branch_rename_failed", branch=OLD_PREFIX + name, error=why)
