"""The one rule for a move of an agent's branch (engine/tamper.py), whether its worktree is here or on a host: only
where its worktree's HEAD reflog is read differs (supervisor/git/tips.py here, the host program's `worktree_facts`
there, engine/host_branches.py).

The new tip must be one its own worktree moved it to (any entry of its HEAD reflog: a commit, a reset, a fetch and
reset), and none of its new commits may come from another agent's branch (its own helpers' excepted: a parent merges
their work), unless its worktree made that commit (an entry that made a commit, never one that only moved onto
it) and no other agent's branch held it when the engine last accepted that branch (a reflog entry written by the
agent saying it made a commit another agent had already is not believed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from supervisor.core.model import Agent
from supervisor.errors import SupervisorError
from supervisor.git.agent_refs import HOSTS_REFS, target_ref
from supervisor.git.audit import new_commits

log = logging.getLogger(__name__)

# Given the commits of other agents' branches the new tip brings (none when there are none), whether the tip is one
# its worktree's HEAD reflog moved it to, and those of the commits given that its worktree made.
Reflog = Callable[[set[str]], tuple[bool, set[str]]]


def judge_move(root: Path, agent: Agent, before: str, tip: str, agents: list[Agent], tips: dict[str, str],
               reflog: Reflog, where: str) -> str | None:
    """Why the move of `agent`'s branch from `before` to `tip` is tampering, or None when its own worktree made it
    (`where`: that worktree, as named in the reason). `reflog` may raise (a host that cannot be asked now)."""
    own = [t for a in agents if a.name.startswith(agent.name + ".") and (t := tips.get(a.branch))]
    strangers = [a for a in agents if a.name != agent.name and not a.name.startswith(agent.name + ".")
                 and a.branch != agent.target]
    others = [t for a in strangers if (t := tips.get(a.branch))]
    into = target_ref(agent)  # a remote helper's target, its parent's branch, as fetched from their host
    known = [rev for rev in (before, into if into.startswith(HOSTS_REFS + "/") else agent.target, *own) if rev]
    mine: set[str] = set()
    foreign: set[str] | None = set()
    if others:
        try:
            mine = set(new_commits(root, tip, known))
            foreign = mine - set(new_commits(root, tip, [*known, *others])) if mine else set()
        except SupervisorError as exc:  # said, and judged by its reflog alone
            log.warning("agent %s: cannot list the commits of %s: %s", agent.name, agent.branch, exc)
            foreign = None
    moved, made = reflog(foreign or set())
    if not moved:
        return f"{tip[:12]} is not a commit its worktree {where} moved it to"
    if not foreign:
        return None
    made &= foreign  # its own, which another branch took since it was last looked at...
    accepted = [t for a in strangers if (t := a.extra.get("tip"))]
    if made and accepted:  # ...never one that branch held already when the engine last accepted it
        try:
            made -= mine - set(new_commits(root, tip, [*known, *accepted]))
        except SupervisorError as exc:
            log.warning("agent %s: cannot list the commits of %s: %s", agent.name, agent.branch, exc)
            return None
    foreign -= made
    if foreign:
        return f"it holds {len(foreign)} commit(s) of other agents' branches (e.g. {sorted(foreign)[0][:12]})"
    return None
