"""The one rule for a move of an agent's branch (engine/tamper.py), whether its worktree is here or on a host: only
where its worktree's HEAD reflog is read differs (supervisor/git/tips.py here, the host program's `worktree_facts`
there, engine/host_branches.py).

The new tip must be one its own worktree moved it to (any entry of its HEAD reflog: a commit, a reset, a fetch and
reset), and none of its new commits may come from another agent's branch (its own helpers' excepted: a parent merges
their work), unless its worktree made that commit (an entry that made a commit, never one that only moved onto
it), no other agent's branch held it when the engine last accepted that branch (a reflog entry written by the
agent saying it made a commit another agent had already is not believed), and no other agent's branch that holds
it now has a worktree saying it made it too (however quickly an agent moved onto another's brand-new commit and
wrote that claim, both are judged from the refs of the same pass: either may have written its reflog, and neither
claim is believed).
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
# Given another agent and commits its branch holds now, those its worktree's HEAD reflog says it made.
Claims = Callable[[Agent, set[str]], set[str]]


def judge_move(root: Path, agent: Agent, before: str, tip: str, agents: list[Agent], tips: dict[str, str],
               reflog: Reflog, claims: Claims, where: str) -> str | None:
    """Why the move of `agent`'s branch from `before` to `tip` is tampering, or None when its own worktree made it
    (`where`: that worktree, as named in the reason). `reflog` and `claims` may raise (a host that cannot be asked
    now), and so may listing the commits of a claim in dispute: the move is then judged at a later pass."""
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
    accepted = [t for a in strangers if (t := _accepted(a))]
    if made and accepted:  # ...never one that branch held already when the engine last accepted it
        try:
            made -= mine - set(new_commits(root, tip, [*known, *accepted]))
        except SupervisorError as exc:
            log.warning("agent %s: cannot list the commits of %s: %s", agent.name, agent.branch, exc)
            return None
    disputed = _disputed(root, tip, known, made, strangers, tips, claims) if made else {}
    foreign -= made - disputed.keys()
    if not foreign:
        return None
    said = f"it holds {len(foreign)} commit(s) of other agents' branches"
    if disputed:
        commit, other = min(disputed.items())
        return f"{said} (e.g. {commit[:12]}, which the worktree of {other}, whose branch holds it, says it made too)"
    return f"{said} (e.g. {sorted(foreign)[0][:12]})"


def _accepted(agent: Agent) -> str | None:
    """The tip of the agent's branch the engine last accepted as its worktree's own: while a tamper waits for a
    human, the one before it (what a branch took from another is never held against that other's claim)."""
    found = agent.extra.get("tamper")
    tip = found.get("old") if isinstance(found, dict) else agent.extra.get("tip")
    return tip if isinstance(tip, str) and tip else None


def _disputed(root: Path, tip: str, known: list[str], made: set[str], strangers: list[Agent],
              tips: dict[str, str], claims: Claims) -> dict[str, str]:
    """Of the commits its worktree says it made, those another agent's branch holds NOW (as read in this pass, not
    only as last accepted: an agent may move onto another's brand-new commit and write its claim before the engine
    looks) and whose worktree says it made them too: commit → that agent."""
    found: dict[str, str] = {}
    for other in strangers:
        theirs = tips.get(other.branch)
        left = made - found.keys()
        if not theirs or not left:
            continue
        held = left - set(new_commits(root, tip, [*known, theirs]))
        for commit in claims(other, held) & held if held else ():
            found[commit] = other.name
    return found
