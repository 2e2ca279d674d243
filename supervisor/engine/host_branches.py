"""Who moved a remote agent's branch, and whether its worktree is on it: the rules of supervisor/engine/tamper.py and
the auditor's off-branch check, judged at home from what the host reports of the agent's worktree there (its HEAD,
and which commits its HEAD reflog moved it to: the host program's `worktree_facts`).

- Off its branch: on the host's slow ticks, one request for every live agent's worktree there; a worktree whose HEAD
  is detached or on another branch is a `boundary` event and trigger, once, until it is back (Auditor._off_branch).
- Tamper: when a remote agent's branch, as fetched home (engine/commits_home.py), moved from the tip the engine
  last accepted, it is judged by the rule for a local agent's (engine/branch_moves.py): the commits are listed at
  home, on what was fetched, and the host says which of them its worktree's HEAD reflog there moved it to and
  which it made (a commit, never a reset or a fetch onto it). A host's `git update-ref` of the agent's branch from
  outside its worktree, or a reset onto another agent's commits, is `tamper`; `merge` refuses it until a human
  accepts it.
As locally, without a sandbox an agent could also write the reflog it is judged by: this catches careless agents,
not a determined one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from supervisor.core.model import Agent
from supervisor.engine.branch_moves import Claims, judge_move
from supervisor.hosts.link import Link, LinkError
from supervisor.hosts.remote.host import RemoteHost
from supervisor.hosts.remote.tmuxlink import CALL_TIMEOUT

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine


@dataclass(frozen=True)
class WorktreeFacts:
    head: str | None  # the ref its HEAD points at, or a detached HEAD's commit; None when it cannot be told
    moved: frozenset[str]  # of the commits asked about, those its HEAD reflog moved it to
    made: frozenset[str]  # of those, the ones an entry of its that made a commit has


def worktree_facts(link: Link, asked: dict[str, list[str]]) -> dict[str, WorktreeFacts]:
    """What the host says of each worktree of `asked` (path → commits to look for in its HEAD reflog); LinkError
    when it cannot be asked now. An answer naming commits not asked about is not believed."""
    found = link.call("worktree_facts", worktrees=asked, timeout=CALL_TIMEOUT)
    facts: dict[str, WorktreeFacts] = {}
    for path, commits in asked.items():
        said = found.get(path) if isinstance(found, dict) else None
        if not isinstance(said, dict):
            raise LinkError(f"the host said nothing of the worktree {path}")
        head, moved, made = said.get("head"), said.get("moved"), said.get("made")
        moved_to = frozenset(moved if isinstance(moved, list) else []) & frozenset(commits)
        facts[path] = WorktreeFacts(head if isinstance(head, str) else None, moved_to,
                                    frozenset(made if isinstance(made, list) else []) & moved_to)
    return facts


def check_host_heads(engine: Engine, link: Link, agents: list[Agent]) -> None:
    """A `boundary` event and trigger for each of the host's agents whose worktree has just left its branch, an
    `on_branch` event when it is back (as the auditor does for local agents)."""
    if not agents:
        return
    facts = worktree_facts(link, {agent.worktree: [] for agent in agents})
    for agent in agents:
        head = facts[agent.worktree].head
        if head is None:
            continue  # cannot tell now (gone, or a rebase in progress): as it was seen last
        off = None if head == f"refs/heads/{agent.branch}" else head
        if off != agent.extra.get("off_branch"):
            engine.auditor._off_branch(agent.name, off)


def judge_remote(engine: Engine, agent: Agent, before: str, tip: str, agents: list[Agent],
                 tips: dict[str, str], claims: Claims) -> str | None:
    """Why the move of the remote agent's branch from `before` to `tip` is tampering, or None when its own worktree
    on its host made it (branch_moves.judge_move, the rule for a local agent too). LinkError (or HostUnreachable)
    when the host cannot be asked: the move is judged when it can."""
    host = _remote_host(engine, agent)

    def reflog(commits: set[str]) -> tuple[bool, set[str]]:
        facts = worktree_facts(host.link(), {agent.worktree: sorted({tip, *commits})})[agent.worktree]
        return tip in facts.moved, set(facts.made & commits)
    return judge_move(engine.paths.root, agent, before, tip, agents, tips, reflog, claims,
                      f"{agent.worktree} on host {agent.host}")


def claimed_on_host(engine: Engine, agent: Agent, commits: set[str]) -> set[str]:
    """Of `commits`, those the remote agent's worktree's HEAD reflog on its host says it made (LinkError or
    HostUnreachable when the host cannot be asked now)."""
    facts = worktree_facts(_remote_host(engine, agent).link(), {agent.worktree: sorted(commits)})[agent.worktree]
    return set(facts.made)


def _remote_host(engine: Engine, agent: Agent) -> RemoteHost:
    host = engine.host_of(agent)
    if not isinstance(host, RemoteHost):
        raise LinkError(f"host {agent.host} is not in supervisor.yaml")
    return host
