"""Where the engine reads an agent's commits: the one answer for every reader (the audit, the conflict radar,
merge, diff, compare, `ls`'s commits ahead).

A local agent's branch is `refs/heads/agent/NAME/work` of the user's repository. A remote agent's branch lives
in the clone on its host; the engine fetches it home as it moves (supervisor/engine/commits_home.py) into a
private namespace, `refs/supervisor/hosts/HOST/heads/agent/NAME/work`, and reads it there: commits the engine
holds itself, checked as they came in, which the host can no longer change. A helper of a remote agent runs on
its parent's host, so its target (its parent's branch) is read in the same host's namespace.

Readers that key branch tips by short name (`agent/NAME/work`, as `branch_tips` does) get them from `tips`,
which puts each remote agent's fetched tip under its short name: agent names are unique in a repository, so a
short name is never two agents' branches.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

from supervisor.core.model import Agent
from supervisor.git.audit import branch_tips
from supervisor.git.refs import AGENT_REFS, agent_of_branch, ref_folder
from supervisor.hostsconfig import LOCAL

HOSTS_REFS = "refs/supervisor/hosts"  # each host's fetched branches, under refs/supervisor/hosts/HOST/heads/
_HEADS = "refs/heads/"


def is_remote(agent: Agent) -> bool:
    return agent.host != LOCAL


def host_namespace(host: str) -> str:
    """Where host `host`'s branches are kept here (bundles.fetch's `namespace`)."""
    return f"{HOSTS_REFS}/{host}"


def on_host(host: str, branch: str) -> str:
    """The full ref here of branch `branch` (short, or `refs/heads/...`) as fetched from `host`."""
    if host == LOCAL:
        return branch if branch.startswith("refs/") else _HEADS + branch
    return f"{host_namespace(host)}/heads/{branch.removeprefix(_HEADS)}"


def branch_ref(agent: Agent) -> str:
    """The full ref the engine reads the agent's commits from."""
    return on_host(agent.host, agent.branch)


def target_ref(agent: Agent) -> str:
    """The full ref of the branch the agent merges into: its base branch (always the user's own), or for a
    helper its parent's branch, where the parent's commits are read (on the same host)."""
    return _target_ref(agent.host, agent.target)


def _target_ref(host: str, target: str) -> str:
    if target.startswith("refs/"):
        return target
    if host != LOCAL and agent_of_branch(target) is not None:
        return on_host(host, target)
    return _HEADS + target


def ref_folders(agents: Iterable[Agent]) -> set[str]:
    """The ref folders (relative to the git common dir) whose stamp changes when one of the agents' branches
    or targets moves, and the folder where a new local agent's folder appears."""
    folders = {AGENT_REFS}
    for agent in agents:
        folders.update(_ref_folders_of(agent.host, agent.branch, agent.target))
    return folders


@functools.lru_cache(maxsize=4096)
def _ref_folders_of(host: str, branch: str, target: str) -> tuple[str, ...]:
    """One agent's ref folders, which depend on these three alone: the services ask for every agent's on each
    of their passes, and working them out again each time was a share of an idle engine's cost."""
    folders = [ref_folder(on_host(host, branch))]
    if target:
        folders.append(ref_folder(_target_ref(host, target)))
    return tuple(folders)


def tips(root: Path, agents: Iterable[Agent]) -> dict[str, str]:
    """Every local branch's tip by short name, with each remote agent's branch (and a remote helper's target)
    replaced by the tip fetched from its host; a remote branch not fetched yet is absent. One git process (two
    with remote agents)."""
    agents = list(agents)
    found = branch_tips(root, "refs/heads/")
    fetched = branch_tips(root, HOSTS_REFS + "/") if any(is_remote(agent) for agent in agents) else {}
    for agent in agents:
        if not is_remote(agent):
            continue
        for short, full in ((agent.branch, branch_ref(agent)), (agent.target, target_ref(agent))):
            if full.startswith(HOSTS_REFS + "/"):
                tip = fetched.get(full)
                if tip is None:
                    found.pop(short, None)
                else:
                    found[short] = tip
    return found
