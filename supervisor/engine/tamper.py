"""Tampering: a branch the engine judges moved by someone who may not move it (SPEC §7).

The engine keeps each agent branch's tip as it last accepted it (`extra["tip"]`, from its base on) and each
base branch's (the branches agents merge into, e.g. `main`: the store's meta `base_tips`). When the auditor
finds one moved (its refs stamp changed), the move is judged here (see `supervisor.git.tips`):
- an agent branch: the new tip must be in its own worktree's HEAD reflog, and none of its new commits may
  come from another agent's branch (its own helpers' excepted);
- a base branch: the new tip must be in the HEAD reflog of a worktree that has it checked out and is not an
  agent's (the human's commits, pulls and merges), be a remote-tracking branch's (`git fetch origin main:main`),
  or be a tip the engine's merge made and recorded.
A move that fails is a `tamper` event and alert naming the ref and its old and new tips; `merge` refuses the
agent (or every agent merging into that base) until a human accepts it (`supervisor merge NAME
--accept-tamper`). Moves made while the engine was down are judged when it next looks, from the same logs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.core import subjects
from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire
from supervisor.engine.branch_moves import Claims, judge_move
from supervisor.engine.host_bases import HostBases
from supervisor.engine.host_branches import claimed_on_host, judge_remote
from supervisor.errors import SupervisorError
from supervisor.git import taking_in, worktrees
from supervisor.git.agent_refs import is_remote
from supervisor.git.audit import branch_tips
from supervisor.git.refs import agent_of_branch
from supervisor.git.tips import human_git_dir, made_by_worktree, made_in

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

BASE_TIPS = "base_tips"  # store meta: {branch: tip the engine accepted}
BASE_TAMPER = "base_tamper"  # store meta: {branch: {"old", "new", "why"}} until a human accepts it


def judge_agent(root: Path, agent: Agent, before: str, tip: str, agents: list[Agent],
                tips: dict[str, str], git_dir: Path | None, claims: Claims) -> str | None:
    """Why the move of the agent's branch from `before` to `tip` is tampering, or None when its own worktree
    (whose own git folder is `git_dir`, as the engine recorded it) made it (branch_moves.judge_move)."""

    def reflog(commits: set[str]) -> tuple[bool, set[str]]:
        moved = made_by_worktree(git_dir, tip)
        return moved, made_in(git_dir) & commits if moved and commits else set()
    return judge_move(root, agent, before, tip, agents, tips, reflog, claims, agent.worktree)


def human_worktrees(root: Path, branch: str, agents: list[Agent]) -> list[Path]:
    """The worktrees that have `branch` checked out and are not an agent's."""
    theirs = {str(Path(a.worktree)) for a in agents}
    try:
        listing = worktrees.run_git(root, "worktree", "list", "--porcelain")
    except SupervisorError:
        return []
    found: list[Path] = []
    path: Path | None = None
    for line in listing.splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
        elif line == f"branch refs/heads/{branch}" and path is not None and str(path) not in theirs:
            found.append(path)
    return found


def fetched(engine: Engine, tip: str) -> bool:
    """Whether `tip` is a remote-tracking branch's (a pull or `git fetch origin main:main` brought it: git moves
    `origin/main` with it); no sandboxed agent can write one."""
    try:
        return tip in branch_tips(engine.paths.root, "refs/remotes/").values()
    except SupervisorError:
        return False


class TipGuard:
    """Judges every move of the agents' branches and of their base branches (run by the auditor, whose lock
    also covers the engine's own merges, so the tip a merge makes is recorded before anyone judges it)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.unjudged = False
        self.host_bases = HostBases(engine)  # base branches made or moved in a host's clone

    def check(self, agents: list[Agent], tips: dict[str, str]) -> None:
        self.unjudged = False  # a move on a host that could not be asked: judged at the next pass
        against = list(agents)  # each tip as accepted, this pass's too (copies: the records read are the cache's)
        for index, agent in enumerate(agents):
            if agent.state == State.QUEUED:
                continue
            tip = tips.get(agent.branch)
            before = agent.extra.get("tip") or agent.base
            if tip is None or tip == before:
                continue
            try:
                if is_remote(agent):  # fetched home from its host (objects checked as they came), judged from what
                    why = judge_remote(self.engine, agent, before, tip, against, tips, self._claims)  # it says
                else:
                    why = judge_agent(self.engine.paths.root, agent, before, tip, against, tips,
                                      self._git_dir(agent), self._claims)
            except SupervisorError as exc:  # a host that cannot be asked now (its own, or another agent's)
                log.info("agent %s: its branch's move is judged once it can be: %s", agent.name, exc)
                self.unjudged = True
                continue
            self._moved(agent.name, before, tip, why)
            if why is None:
                against[index] = replace(agent, extra={**agent.extra, "tip": tip})
            if not is_remote(agent):
                self._take_in(agent.name, tip)
        self._check_bases(agents, tips)

    def _claims(self, agent: Agent, commits: set[str]) -> set[str]:
        """Of `commits` (the agent's branch holds them), those its worktree's HEAD reflog says it made: here, or on
        its host (HostUnreachable, LinkError when it cannot be asked now)."""
        if is_remote(agent):
            return claimed_on_host(self.engine, agent, commits)
        return made_in(self._git_dir(agent)) & commits

    def _git_dir(self, agent: Agent) -> Path | None:
        """The agent's worktree's own git folder as recorded when the engine made it (its `.git` file is the
        agent's to rewrite); None when it cannot be told (every move then judged not its worktree's)."""
        try:
            return worktrees.admin_dir(self.engine.paths.common_dir, Path(agent.worktree),
                                       agent.extra.get(worktrees.GIT_DIR_KEY))
        except SupervisorError:
            return None

    def _take_in(self, name: str, tip: str) -> None:
        """Bring the objects the agent's git wrote into its own folder into the shared store, checked, so the
        user's own git sees its commits; what cannot be taken in is said once, for this tip (a merge tries again,
        and refuses saying why)."""
        paths = self.engine.paths
        try:
            taking_in.take_in(paths.root, paths.agent_objects(name))
        except SupervisorError as exc:
            log.warning("agent %s: %s", name, exc.message)
            self.engine.store.append_event(name, "objects_refused", tip=tip, why=exc.message,
                                           summary=f"its objects were not taken in: {exc.message}")

    def _moved(self, name: str, before: str, tip: str, why: str | None) -> None:
        engine = self.engine
        with engine.agent_lock(name):
            agent = engine.store.get_agent(name)
            if agent is None:
                return
            agent.extra["tip"] = tip
            if why is None:
                engine.store.save_agent(agent)
                return
            found = {"ref": f"refs/heads/{agent.branch}", "old": before, "new": tip, "why": why}
            agent.extra.setdefault("tamper", found)  # the first one stands until a human accepts it
            summary = (f"tamper: {found['ref']} moved from {before[:12]} to {tip[:12]}, not by its own worktree: "
                       f"{why}; `supervisor merge {name}` refuses it until a human accepts it")
            engine.store.save_agent(agent, "tamper", **found, summary=summary)
        fire(engine.store, agent, Trigger.TAMPER, summary, ref=found["ref"], old=before, new=tip, why=why)

    def _check_bases(self, agents: list[Agent], tips: dict[str, str]) -> None:
        store = self.engine.store
        bases = sorted({a.target for a in agents if a.target and agent_of_branch(a.target) is None
                        and a.target in tips})
        if not bases:
            return
        recorded: dict[str, str] = json.loads(store.get_meta(BASE_TIPS) or "{}")
        changed = False
        for base in bases:
            tip, before = tips[base], recorded.get(base)
            if tip == before:
                continue
            recorded[base], changed = tip, True
            if before is None:
                continue  # first seen: adopted as it is
            if any(made_by_worktree(human_git_dir(path), tip)
                   for path in human_worktrees(self.engine.paths.root, base, agents)) or fetched(self.engine, tip):
                continue
            self._base_tampered(base, before, tip, [a for a in agents if a.target == base] or agents)
        if changed:
            store.set_meta(BASE_TIPS, json.dumps(recorded))

    def _base_tampered(self, base: str, before: str, tip: str, concerned: list[Agent]) -> None:
        store = self.engine.store
        why = "no worktree of yours that has it checked out moved it there, nor the engine's merge"
        found = {"ref": f"refs/heads/{base}", "old": before, "new": tip, "why": why}
        pending: dict[str, Any] = json.loads(store.get_meta(BASE_TAMPER) or "{}")
        pending.setdefault(base, found)
        store.set_meta(BASE_TAMPER, json.dumps(pending))
        summary = (f"tamper: {found['ref']} moved from {before[:12]} to {tip[:12]}: {why}; `supervisor merge` "
                   f"refuses every agent merging into {base} until a human accepts it")
        store.append_event(None, "tamper", **found, summary=summary)
        fire(store, concerned[0], Trigger.TAMPER, summary, subject=subjects.REPO, subject_summary=summary,
             ref=found["ref"], old=before, new=tip, why=why)

    # merge ------------------------------------------------------------------------------------------------

    def refusal(self, agent: Agent) -> str | None:
        """Why `merge` refuses the agent for tampering (its branch's, or its target's), or None."""
        found = agent.extra.get("tamper")
        pending = json.loads(self.engine.store.get_meta(BASE_TAMPER) or "{}").get(agent.target)
        parts = [f"{item['ref']} moved from {item['old'][:12]} to {item['new'][:12]} ({item['why']})"
                 for item in (found, pending) if item]
        on_host = self.host_bases.refusal(agent)
        return "; ".join(parts + ([on_host] if on_host else [])) or None

    def accept(self, agent: Agent) -> None:
        """A human looked at the tampering and accepts the branches as they stand."""
        store = self.engine.store
        with self.engine.agent_lock(agent.name):
            current = self.engine.get(agent.name)
            found = current.extra.pop("tamper", None)
            if found:
                store.save_agent(current, "tamper_accepted", **found, by="human")
        pending: dict[str, Any] = json.loads(store.get_meta(BASE_TAMPER) or "{}")
        base = pending.pop(agent.target, None)
        if base:
            store.set_meta(BASE_TAMPER, json.dumps(pending))
            store.append_event(None, "tamper_accepted", **base, by="human")
        self.host_bases.accept(agent)

    def merged(self, agent: Agent, commit: str) -> None:
        """The engine's merge moved the agent's target to `commit`: its tip, accepted."""
        store = self.engine.store
        owner = agent_of_branch(agent.target)
        if owner is None:
            recorded: dict[str, str] = json.loads(store.get_meta(BASE_TIPS) or "{}")
            recorded[agent.target] = commit
            store.set_meta(BASE_TIPS, json.dumps(recorded))
            return
        with self.engine.agent_lock(owner):
            parent = store.get_agent(owner)
            if parent is not None and parent.branch == agent.target:
                parent.extra["tip"] = commit
                store.save_agent(parent)
